# The two commands (see README): `make test` and `make demo`. Both bootstrap first.
.PHONY: bootstrap worker test demo bench fmt fuzz

bootstrap:
	@bash scripts/bootstrap.sh

worker: bootstrap
	@bash scripts/build-worker.sh

test: bootstrap
	@bash scripts/test.sh

demo: bootstrap
	@bash scripts/demo.sh

bench: bootstrap
	@bash scripts/bench.sh

fuzz: bootstrap
	@bash scripts/fuzz.sh

fmt:
	cargo fmt --all
