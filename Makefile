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

# The image pipeline natively and as wasm under Node, vs baselines; see docs/benchmarks.md.
bench: bootstrap
	@bash scripts/bench.sh

fmt:
	cargo fmt --all
