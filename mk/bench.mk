# Benchmarks: `make bench` measures every sidecar against its targets and writes docs/benchmarks.md.
# The benchmark peers, from Debian. Only `make bench` needs them, so they stay out of
# mk/system-packages.txt (what `make install` adds for the tests).
BENCH_APT := rsyslog rsyslog-elasticsearch wrk
# syslog-ng conflicts with rsyslog as a package: it is unpacked here instead (bench/peers.py finds it).
BENCH_PEERS ?= .bench-peers

.PHONY: bench bench-deps

bench-deps: ## Install the benchmark peers from Debian (rsyslog + omelasticsearch, wrk; syslog-ng unpacked into .bench-peers) if missing
	@missing=""; for p in $(BENCH_APT); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@scripts/syslog-ng-scratch.sh $(BENCH_PEERS)/syslog-ng

bench: install bench-deps ## Run every benchmark (BENCH_QUICK=1 for a fast pass) and write docs/benchmarks.md
	$(BIN)/python -m bench
