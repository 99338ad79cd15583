# The machine the tests run on: `make system-deps` adds the Debian packages no package
# registry ships (mk/system-packages.txt; `make install` runs it too), and `make fresh-test`
# proves that the README's prerequisites are enough: a clean clone of HEAD runs
# `make test` in the debootstrap base image with only make, git and python3-venv added.
# Which image fresh-test uses: the bare base that `make docker-bootstrap` builds.
FRESH_IMAGE ?= sidecar-lab/python-base:bookworm
FRESH_PYTEST_ARGS ?=

.PHONY: system-deps fresh-test

system-deps: ## Install the Debian packages the tests need (mk/system-packages.txt) as root or with sudo; else say how
	@scripts/system-deps.sh

fresh-test: docker-bootstrap ## Run `make test` on a clean clone of HEAD in the bare base image (README prerequisites only)
	FRESH_IMAGE=$(FRESH_IMAGE) FRESH_PYTEST_ARGS="$(FRESH_PYTEST_ARGS)" scripts/fresh-clone-test.sh
