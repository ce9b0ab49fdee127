# The two commands (see README): `make test` and `make demo`. Both bootstrap first (`make test`
# with Chromium for the browser tests).
.PHONY: bootstrap worker test demo bench chaos fmt fuzz

bootstrap:
	@bash scripts/bootstrap.sh

worker: bootstrap
	@bash scripts/build-worker.sh

# The browser tests need Chromium: only `make test` installs it.
test:
	@bash scripts/bootstrap.sh --browser
	@bash scripts/test.sh

# `make demo BACKEND=http://192.168.1.10:8000 [BACKEND_API_KEY=...]`: in front of your own ArgusAI.
demo: bootstrap
	@BACKEND="$(BACKEND)" BACKEND_API_KEY="$(BACKEND_API_KEY)" bash scripts/demo.sh

bench: bootstrap
	@bash scripts/bench.sh

# The whole stack under load and faults; writes docs/reliability.md (see scripts/chaos.sh for
# CHAOS_CLIENTS, CHAOS_REQUESTS, CHAOS_SOAK_SECS, CHAOS_HOLD_SECS).
chaos: bootstrap
	@CHAOS_CLIENTS="$(CHAOS_CLIENTS)" CHAOS_REQUESTS="$(CHAOS_REQUESTS)" CHAOS_SOAK_SECS="$(CHAOS_SOAK_SECS)" \
		CHAOS_HOLD_SECS="$(CHAOS_HOLD_SECS)" CHAOS_MACHINE="$(CHAOS_MACHINE)" bash scripts/chaos.sh

fuzz: bootstrap
	@bash scripts/fuzz.sh

fmt:
	cargo fmt --all
