# Docker and compose: `make up` runs the whole stack, `make e2e` tests it end to end
# (docs/docker.md). Every target talks to a local dockerd; `make test` never does.
IMAGE_TAG ?= 0.1.0
# Base of every service image; sidecar-lab/python-base:bookworm without a registry.
BASE_IMAGE ?= python:3.11-slim-bookworm
COMPOSE ?= docker compose
# The CI stack: local images, the Elasticsearch emulator, no Kibana or Grafana.
COMPOSE_CI = $(COMPOSE) -f docker-compose.yml -f docker-compose.ci.yml
# Seconds `--wait` may take until every container is healthy.
WAIT_TIMEOUT ?= 600
# Where `make e2e` puts the throwaway copy of ./config that the tests edit.
E2E_DIR ?= /tmp/sidecar-lab-e2e
E2E_ARGS ?=
# The workshop labs' compose blocks run against the same stack (tests/labs).
E2E_LAB_TESTS ?= tests/labs/test_labs.py::test_lab_blocks_against_the_compose_ci_stack
service ?=

# Passed to compose (they override .env) and to the bootstrap script.
export IMAGE_TAG

.PHONY: docker-bootstrap images up down logs ps clean e2e

docker-bootstrap: ## Install and start dockerd + Compose, build the local base and Prometheus images (no registry needed)
	scripts/docker-bootstrap.sh packages daemon compose base prometheus

images: ## Build every service image (and the ES emulator) with docker build; BASE_IMAGE=... to change the base
	BASE_IMAGE=$(BASE_IMAGE) scripts/docker-bootstrap.sh images
	@docker images --filter=reference='sidecar-lab/*:$(IMAGE_TAG)' --format '{{.Repository}}:{{.Tag}}\t{{.Size}}'

# mesh-ca and kibana-setup are one-shot jobs: `--wait` would count their exits as failures, so
# both are scaled to 0 while waiting. mesh-ca runs first (the mesh proxies need its certificates;
# run again, it rotates them), kibana-setup once Kibana is healthy.
up: ## Build and start the whole stack (two pods with the mesh), wait until every container is healthy, print the URLs
	BASE_IMAGE=$(BASE_IMAGE) $(COMPOSE) --profile ui run --rm --build mesh-ca
	BASE_IMAGE=$(BASE_IMAGE) $(COMPOSE) --profile ui up -d --build --wait --wait-timeout $(WAIT_TIMEOUT) --scale mesh-ca=0 --scale kibana-setup=0
	$(COMPOSE) --profile ui run --rm kibana-setup
	@url() { echo "http://$$($(COMPOSE) --profile ui port $$1 $$2)$$3"; }; \
	echo ""; \
	echo "sidecar-lab is up (every port on 127.0.0.1):"; \
	echo "  web tier         $$(url web-pause 8080 /api/greeting)  (calls the api pod through both Envoys, mTLS)"; \
	echo "  api pod:"; \
	echo "    config sidecar $$(url pause 8081 /status)"; \
	echo "    log sidecar    $$(url pause 8082 /metrics)"; \
	echo "    exporter       $$(url pause 9102 /metrics)"; \
	echo "    mesh proxy     $$(url pause 9903 /stats/prometheus)  inbound (mTLS only): $$($(COMPOSE) port pause 8443)"; \
	echo "    app            on the pod's 127.0.0.1:8080 only: through the mesh (web), or docker compose exec"; \
	echo "  web pod:"; \
	echo "    config sidecar $$(url web-pause 8081 /status)"; \
	echo "    log sidecar    $$(url web-pause 8082 /metrics)"; \
	echo "    mesh proxy     $$(url web-pause 9903 /stats/prometheus)"; \
	echo "  Elasticsearch    $$(url elasticsearch 9200 /)"; \
	echo "  Kibana           $$(url kibana 5601 /app/discover)  (data view logs-app*)"; \
	echo "  Prometheus       $$(url prometheus 9090 /targets)"; \
	echo "  Grafana          $$(url grafana 3000 /d/sidecar-lab)"; \
	echo "Edit a file in ./config/ (web's: deploy/compose/web/config/) and the running pod reloads it."; \
	echo "Stop: make down (make clean drops the volumes)."

down: ## Stop and remove the stack's containers and network (volumes are kept)
	$(COMPOSE) --profile ui down --remove-orphans

logs: ## Follow the stack's logs (service=app for one service)
	$(COMPOSE) --profile ui logs -f --tail=100 $(service)

ps: ## List the stack's containers and their health
	$(COMPOSE) --profile ui ps -a

clean: ## make down, and also remove the stack's volumes (config, logs, checkpoints, data)
	$(COMPOSE) --profile ui down --remove-orphans --volumes

# The e2e layer: bootstrap dockerd + local images if needed, start the CI stack on copies of
# both pods' config sources, run tests/e2e (and the labs' compose blocks) through the 127.0.0.1
# ports, and always tear down with -v. mesh-ca runs first, as in `make up`.
e2e: install docker-bootstrap ## Run the e2e tests against the CI stack (real dockerd, local images), always tear down
	rm -rf $(E2E_DIR) && mkdir -p $(E2E_DIR) && cp -a config $(E2E_DIR)/config \
		&& cp -a deploy/compose/web/config $(E2E_DIR)/web-config
	@status=0; \
	export E2E_CONFIG_SOURCE=$(E2E_DIR)/config E2E_WEB_CONFIG_SOURCE=$(E2E_DIR)/web-config; \
	start=$$(date +%s); \
	$(COMPOSE_CI) down --volumes --remove-orphans --timeout 10 >/dev/null 2>&1 || true; \
	$(COMPOSE_CI) run --rm --build mesh-ca || status=$$?; \
	if [ $$status -eq 0 ]; then \
		$(COMPOSE_CI) up -d --build --wait --wait-timeout $(WAIT_TIMEOUT) --scale mesh-ca=0 || status=$$?; \
	fi; \
	echo "e2e: stack up (status $$status) after $$(( $$(date +%s) - start ))s"; \
	if [ $$status -ne 0 ]; then $(COMPOSE_CI) ps -a; $(COMPOSE_CI) logs --tail=60; fi; \
	if [ $$status -eq 0 ]; then \
		E2E_REQUIRE_STACK=1 E2E_TEARDOWN=1 $(BIN)/pytest tests/e2e $(E2E_LAB_TESTS) $(E2E_ARGS) || status=$$?; \
		if [ $$status -ne 0 ]; then $(COMPOSE_CI) ps -a; $(COMPOSE_CI) logs --tail=60; fi; \
	fi; \
	$(COMPOSE_CI) down --volumes --remove-orphans --timeout 20; \
	echo "e2e: finished (status $$status) after $$(( $$(date +%s) - start ))s"; \
	exit $$status
