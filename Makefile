# The two commands (see README): `make test` and `make demo`. Both bootstrap first.
.PHONY: bootstrap worker test demo bench fmt

bootstrap:
	@bash scripts/bootstrap.sh

worker: bootstrap
	@bash scripts/build-worker.sh

test: bootstrap
	@bash scripts/test.sh

demo: bootstrap
	@bash scripts/demo.sh

# Benchmarks: one run each, figures and ratios printed (docs/benchmarks.md keeps the last ones).
bench: bootstrap
	@bash scripts/bench-proxy.sh

fmt:
	cargo fmt --all
