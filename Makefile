# pythia-pipe — the commands a developer needs. `make help` lists them.
GO      ?= go
BIN     := bin/pythia-pipe
PKGS    := ./...

.PHONY: help build install image test e2e chaos kafka-up kafka-down cluster-up cluster-down registry-up registry-down lint fmt fuzz bench demo docs clean

# make image: the image's name, and the Podman settings it builds with (runc, cgroupfs, the
# host's ulimits: what works on these VMs; see the file). PODMAN_CONF= uses your own instead.
IMAGE       ?= localhost/pythia-pipe:latest
PODMAN_CONF ?= $(CURDIR)/deploy/podman/containers.conf
PODMAN      := $(if $(PODMAN_CONF),CONTAINERS_CONF=$(PODMAN_CONF) )podman
CA_CERTS    ?= /etc/ssl/certs/ca-certificates.crt

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

# -buildvcs=auto: `pythia-pipe version` names the commit when built in a clone, whatever GOFLAGS says.
build: ## build bin/pythia-pipe
	$(GO) build -buildvcs=auto -o $(BIN) ./cmd/pythia-pipe

install: ## go install ./cmd/pythia-pipe: pythia-pipe into $(go env GOPATH)/bin (or $GOBIN); put that on PATH
	$(GO) install -buildvcs=auto ./cmd/pythia-pipe
	@bin=$$($(GO) env GOBIN); echo "installed $${bin:-$$($(GO) env GOPATH)/bin}/pythia-pipe (put that directory on PATH)"

# The binary is static (CGO_ENABLED=0) and stamped like build's; the labels say the version
# `pythia-pipe version` prints (or git's, where Go stamps none: a git worktree) and the commit.
# --no-cache: Podman 4.3 (buildah 1.28) reuses a cached LABEL step whose build arguments
# changed, which would keep the labels of an earlier build; the build is three copies anyway.
image: ## build a static binary and the OCI image $(IMAGE) from scratch with Podman (apt-get install podman runc)
	@command -v podman >/dev/null || { echo "make image: podman is not installed (apt-get install -y podman runc)"; exit 1; }
	@test -s $(CA_CERTS) || { echo "make image: no CA certificates at $(CA_CERTS) (apt-get install -y ca-certificates)"; exit 1; }
	rm -rf bin/image && mkdir -p bin/image
	CGO_ENABLED=0 $(GO) build -buildvcs=auto -trimpath -ldflags='-s -w' -o bin/image/pythia-pipe ./cmd/pythia-pipe
	cp $(CA_CERTS) bin/image/ca-certificates.crt
	cp deploy/image/passwd deploy/image/group bin/image/
	version=$$($(GO) version -m bin/image/pythia-pipe | awk '$$1 == "mod" {print $$3}'); \
	case "$$version" in ""|"(devel)") version=$$(git describe --tags --always --dirty 2>/dev/null || echo dev);; esac; \
	revision=$$(git rev-parse HEAD 2>/dev/null || echo unknown); \
	$(PODMAN) build --no-cache --layers=false -f deploy/image/Containerfile --build-arg VERSION="$$version" --build-arg REVISION="$$revision" -t $(IMAGE) bin/image
	@$(PODMAN) image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' $(IMAGE)

test: ## vet, then every test with the race detector (needs Graphviz's dot)
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

e2e: ## the end-to-end suite on a real Apache Kafka and a real schema registry (Java 17 and 21+, Maven; both from Maven Central)
	$(GO) vet -tags e2e ./internal/...
	$(GO) test -tags e2e -count=1 -p 1 -timeout 30m ./internal/realkafka ./internal/registry ./internal/e2e ./internal/proctest ./internal/deploytest

chaos: ## the failure suite on a real three-broker cluster: brokers killed, hung, restarted one by one and cut off by a fault proxy, in both delivery modes (about 16 minutes; CHAOS_ONLY=name, CHAOS_RECORDS=n, CHAOS_REPORT=file)
	$(GO) vet -tags chaos ./internal/chaos
	$(GO) test -tags chaos -count=1 -v -timeout 90m ./internal/chaos

kafka-up: ## start a real Kafka on 127.0.0.1:9092-9096 (PLAINTEXT, SASL, SSL, mutual TLS)
	$(GO) run ./internal/realkafka/kafkactl up

kafka-down: ## stop it
	$(GO) run ./internal/realkafka/kafkactl down

cluster-up: ## start a real Kafka cluster, a controller and 3 brokers (replication 3, min.insync.replicas 2), clients on 127.0.0.1:19092-19094
	$(GO) run ./internal/realkafka/kafkactl up --cluster

cluster-down: ## stop it
	$(GO) run ./internal/realkafka/kafkactl down --cluster

registry-up: ## start a schema registry (Apicurio, Confluent API) on 127.0.0.1:8081 (Java 21+; from Maven Central)
	$(GO) run ./internal/registry/registryctl up

registry-down: ## stop it
	$(GO) run ./internal/registry/registryctl down

# No git-tracked file over 1 MB outside testdata/ directories: a stale binary once slipped in.
lint: ## gofmt and go vet must be clean (the e2e and chaos suites' build tags too); no tracked file over 1 MB outside testdata/
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@git ls-files -z | xargs -0 -r stat -c '%s %n' -- 2>/dev/null | awk '{size = $$1; sub(/^[0-9]+ /, "")} \
	  size > 1048576 && $$0 !~ /(^|\/)testdata\// {printf "make lint: %s is %d bytes, over 1 MB (1048576 bytes); only testdata/ may hold larger files\n", $$0, size; bad = 1} \
	  END {exit bad}'
	$(GO) vet $(PKGS)
	$(GO) vet -tags e2e ./internal/...
	$(GO) vet -tags chaos ./internal/chaos

fmt: ## format the code
	gofmt -w .

fuzz: ## fuzz the loader and validator for FUZZTIME (default 60s)
	$(GO) test ./pipeline -run '^$$' -fuzz FuzzParse -fuzztime $${FUZZTIME:-60s} -fuzzminimizetime 5s

bench: ## the orders example (JSON, and on Avro; at-least-once and exactly-once) over a 1M backlog beside hand-written sarama and franz-go loops (and Kafka Streams on real Kafka), and their latency at 20k/s, as tables (BENCH_RECORDS=n, BENCH_KAFKA=real, BENCH_RUNS=n alternated runs; BENCH_TABLES=state: dedupe, aggregate and restore beside Kafka Streams); then the other benchmarks
	$(GO) test -c -o bin/bench.test ./internal/bench
	$(GO) run ./internal/bench/table bin/bench.test
	$(GO) test -run '^$$' -bench . -benchmem $$($(GO) list ./... | grep -v /internal/bench)
	$(GO) test -run '^$$' -bench Enrich -benchmem ./internal/bench

docs: ## regenerate docs/reference.md and docs/reference/ (a page per stage, source and sink type) from the field specs
	$(GO) run ./cmd/pythia-pipe docs --dir docs

demo: build ## run the orders example on an in-process broker with sample records
	./$(BIN) dev pipelines/orders.yaml --feed testdata/orders-feed.jsonl

clean: ## remove build output
	rm -rf bin
