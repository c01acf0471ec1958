# Wayside: the two commands of the README are `make run` and `make test`.
# Each installs the Debian packages it needs when they are missing, builds, and runs.

SWIFT        ?= swift
CONFIG       ?= release
BIN          := .build/$(CONFIG)/wayside
# Packages every build needs, and those the tests and benchmarks need beyond them.
BUILD_DEBS   := libnl-3-dev libnl-route-3-dev pkg-config iproute2
TEST_DEBS    := $(BUILD_DEBS) nftables tshark ethtool curl python3 iptables mptcpize

.PHONY: run test bench fuzz build deps test-deps clean test-netem netem-guest

# The README's main command: the default experiment (needs root: it builds namespaces).
run: deps build
	$(BIN) run

# End-to-end experiments with kernel MPTCP run after the rest, one at a time:
# on 2 cores they and the emulator's fidelity tests disturb each other's timing.
E2E_SUITES   := RunCommandRootTests|KernelTrafficRootTests|SweepRealRootTests|StackInteropRootTests
test: test-deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --skip '$(E2E_SUITES)'
	$(SWIFT) test --skip-build --no-parallel --filter '$(E2E_SUITES)'
	@$(MAKE) --no-print-directory netem-guest

# The netem backend's checks inside Debian's stock kernel (has sch_netem) under
# qemu with virtme-ng; a few minutes under software emulation (no KVM here).
# Part of `make test`; skipped, saying why, only when the guest tooling cannot
# be installed (no network, no apt or pip).
NETEM_DEBS   := qemu-system-x86 busybox-static linux-image-amd64
test-netem: test-deps
	$(SWIFT) build --build-tests
	@$(MAKE) --no-print-directory netem-guest

netem-guest:
	@if ! scripts/install-debs.sh $(NETEM_DEBS); then \
		echo "SKIPPED netem guest check: could not install Debian packages $(NETEM_DEBS)"; \
	elif ! { command -v vng >/dev/null || pip install -q virtme-ng 2>/dev/null || python3 -m pip install -q --break-system-packages virtme-ng; }; then \
		echo "SKIPPED netem guest check: could not install virtme-ng from PyPI (pip install virtme-ng)"; \
	else \
		PATH="$$PATH:$$HOME/.local/bin" WAYSIDE_NETEM_GUEST=1 $(SWIFT) test --skip-build --filter NetemGuestRootTests; \
	fi

bench: test-deps build
	$(BIN) bench wire
	$(BIN) bench tcp
	$(BIN) bench links
	$(BIN) bench testbed
	$(BIN) bench emulator
	$(BIN) bench mptcp --simult-flows
	$(BIN) bench sim
	$(BIN) bench sweep
	$(BIN) bench stack

build:
	$(SWIFT) build -c $(CONFIG)

deps:
	@scripts/install-debs.sh $(BUILD_DEBS)

test-deps:
	@scripts/install-debs.sh $(TEST_DEBS)

# libFuzzer over the packet parsers (Fuzz/ is its own package so the normal
# build never sees -sanitize=fuzzer). New inputs go to .build/fuzz-corpus; the
# committed seeds in Fuzz/corpus are only read. FUZZ_RUNS inputs, then stop.
FUZZ_RUNS    ?= 1000000
fuzz:
	cd Fuzz && $(SWIFT) build -c release -Xswiftc -sanitize=fuzzer -Xswiftc -use-ld=lld
	mkdir -p .build/fuzz-corpus fuzz-artifacts
	Fuzz/.build/release/PacketParserFuzzer -runs=$(FUZZ_RUNS) -max_len=2048 -print_final_stats=1 \
		-artifact_prefix=fuzz-artifacts/ .build/fuzz-corpus Fuzz/corpus
	mkdir -p .build/fuzz-corpus-convert
	Fuzz/.build/release/ConvertFuzzer -runs=$(FUZZ_RUNS) -max_len=1100 -print_final_stats=1 \
		-artifact_prefix=fuzz-artifacts/convert- .build/fuzz-corpus-convert Fuzz/corpus-convert

clean:
	rm -rf .build Fuzz/.build
