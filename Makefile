# readocr: OCR as a service. `make help` lists the targets.
SHELL := /usr/bin/env bash
.DEFAULT_GOAL := help

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
BIN      := bin/readocr
PORT     ?= 4000

# Tesseract's OpenMP threads fight over the CPUs; the service re-executes itself with this set,
# and the tests and tools run by make get it from here.
export OMP_THREAD_LIMIT := 1

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

.PHONY: deps
deps: ## install the system packages (Debian/Ubuntu) or say what is missing
	@hack/install-deps.sh

.PHONY: build
build: deps ## build bin/readocr
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./service/cmd/readocr

.PHONY: run
run: build ## run the service on :$(PORT) (no cluster needed)
	PORT=$(PORT) ./$(BIN)

.PHONY: test-deps
test-deps: ## the system packages and what only the tests use (Chromium, tmux, language packs unpacked in ~/.cache/readocr)
	@hack/install-deps.sh --test

# Screenshots of the web page and screens of the client's runs (test/browser, test/terminal).
export READOCR_ARTIFACTS ?= $(CURDIR)/bin/artifacts

# The race detector on the code that runs in production (the service, the client, the shared
# packages). The Pulumi program's tests and the harnesses in test/ (which drive processes,
# containers, a browser) run without it: instrumenting Pulumi's and Kubernetes' SDKs for them
# cost a cold run about 13 CPU-minutes, where lint's build of the same packages serves a plain
# run (docs/ci.md).
RACE_PKGS := ./service/... ./client/... ./internal/... ./images/...
PLAIN_PKGS := ./infra/... ./test/...
TEST_ENV := READOCR_REQUIRE_BROWSER=1 READOCR_REQUIRE_TERMINAL=1 READOCR_REQUIRE_LANGPACKS=1 READOCR_REQUIRE_PROMETHEUS=1

.PHONY: test
test: test-deps ## unit and integration tests on real libtesseract (the service and client with the race detector); the page in Chromium, the client in tmux, the alerts in promtool and Prometheus
	@test -z "$$($(GO) list ./... | grep -v -e '/service/' -e '/service$$' -e '/client' -e '/internal/' -e '/images/' -e '/infra' -e '/test/')" || { echo "a package in neither RACE_PKGS nor PLAIN_PKGS"; exit 1; }
	$(TEST_ENV) $(GO) test -race -count=1 -timeout 20m $(RACE_PKGS)
	$(TEST_ENV) $(GO) test -count=1 -timeout 20m $(PLAIN_PKGS)
	@# Memory measurements skip themselves under -race (its shadow memory swamps them): again without.
	READOCR_REQUIRE_LANGPACKS=1 $(GO) test -count=1 \
	  -run '^(TestWorkerGivesBackMemory|TestPDFPageCost|TestModelCost|TestTenLanguagesAtOnce|TestModelShareEvicts)$$' ./service/internal/ocr

TOOLS := $(GO) tool -modfile=hack/tools/go.mod

.PHONY: lint
lint: ## gofmt, go vet, staticcheck, actionlint, yamllint, shellcheck, dockerfilelint, hadolint's rules and ShellCheck pass, workflow and pin rules, the README's tested blocks, the gosseract patch
	@out=$$(gofmt -l service client infra internal test third_party hack images); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(TOOLS) staticcheck ./...
	$(TOOLS) actionlint
	yamllint --strict .
	shellcheck -x $$(git ls-files 'hack/*.sh' 'hack/**/*.sh' .ci/run .ci/prebuild)
	npm ci --prefix hack/tools --silent --no-audit --no-fund && hack/tools/node_modules/.bin/dockerfilelint Dockerfile images/langpacks/Dockerfile
	@# What fails GitHub's lint job or leaves a pin unwatched, checked here (static: a few seconds).
	$(GO) test -count=1 ./test/dockerfile ./test/workflows ./test/pins ./test/readme
	hack/gosseract-patch.sh --verify

.PHONY: kube-score
kube-score: ## kube-score on manifests/: every critical finding one the README answers (hack/kube-score.sh)
	hack/kube-score.sh

.PHONY: fuzz
fuzz: deps ## run each fuzz target for FUZZTIME (default 30s)
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime $${FUZZTIME:-30s} ./service/internal/tessconfig
	$(GO) test -run '^$$' -fuzz FuzzConfig -fuzztime $${FUZZTIME:-30s} ./service/internal/imageinput
	$(GO) test -run '^$$' -fuzz FuzzJPEG -fuzztime $${FUZZTIME:-30s} ./service/internal/imageinput
	$(GO) test -run '^$$' -fuzz FuzzOpen -fuzztime $${FUZZTIME:-30s} ./service/internal/imageinput
	$(GO) test -run '^$$' -fuzz FuzzParsePages -fuzztime $${FUZZTIME:-30s} ./service/internal/imageinput
	$(GO) test -run '^$$' -fuzz FuzzDocumentPages -fuzztime $${FUZZTIME:-30s} ./service/internal/ocr
	$(GO) test -run '^$$' -fuzz FuzzGIF -fuzztime $${FUZZTIME:-30s} ./service/internal/imageinput

.PHONY: bench
bench: build $(if $(shell docker info >/dev/null 2>&1 && echo y),image) ## service vs gosseract limit vs CLI baseline (+ container, + BEFORE=<git rev>), documents, searchable PDFs vs OCRmyPDF, jobs, API keys, tracing on vs off, memory soak, worst cases; to docs/benchmarks.md
	@hack/install-deps.sh --bench
	$(GO) build -o bin/ocrbench ./service/cmd/ocrbench
	$(if $(BEFORE),hack/build-at.sh $(BEFORE) bin/readocr-before)
	./bin/ocrbench -server $(BIN) -n $${BENCH_N:-300} -soak $${BENCH_SOAK:-10000} -worst -documents -ocrmypdf -jobs -pages -auth -tracing -out docs/benchmarks.md \
	  $(if $(BEFORE),-before bin/readocr-before) $$(docker info >/dev/null 2>&1 && echo "-image $(IMAGE):$(TAG)")

IMAGE ?= readocr
TAG   ?= $(shell cat VERSION)

.PHONY: image
image: ## build the container image readocr:$(TAG), also tagged ghcr.io/readocr/readocr:$(TAG) (starts a Docker engine if none runs)
	@hack/image.sh $(TAG)

LANGPACKS ?= deu fra jpn

.PHONY: langpacks
langpacks: ## language-pack images from Debian's packages: ghcr.io/readocr/langpack-<pack>:4.1.0 for each of LANGPACKS (deu fra jpn); the service image is not rebuilt
	@hack/langpack-image.sh $(LANGPACKS)

.PHONY: run-image
run-image: image ## run the image on :$(PORT) with the restrictions a cluster applies
	docker run --rm -p $(PORT):4000 --read-only --tmpfs /tmp:mode=1777 --cap-drop ALL --security-opt no-new-privileges \
	  --memory 1g --cpus 2 $(IMAGE):$(TAG)

.PHONY: test-image
test-image: image ## build the image and test it on the Docker engine
	READOCR_IMAGE=$(IMAGE):$(TAG) $(GO) test -count=1 -v ./test/container

.PHONY: manifests
manifests: ## render manifests/ from the Pulumi program in infra/
	hack/render-manifests.sh manifests

.PHONY: manifests-check
manifests-check: ## fail if manifests/ differs from what infra/ renders (rendered with a KUBECONFIG set, as users have one; manifests/monitoring is written by hand)
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	  printf 'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]\ncontexts: [{name: c, context: {cluster: c}}]\ncurrent-context: c\n' >$$tmp/kubeconfig; \
	  KUBECONFIG=$$tmp/kubeconfig hack/render-manifests.sh $$tmp/out >/dev/null; \
	  diff -ru -x monitoring manifests $$tmp/out && echo "manifests/ is up to date" || \
	  { echo "manifests/ is stale: run make manifests and commit"; exit 1; }

.PHONY: e2e
e2e: ## on a real minikube (a running one, or built here): kubectl apply, rollout under load, autoscaler, pulumi up
	hack/e2e.sh

.PHONY: minikube
minikube: ## on the running minikube: build or load the image, kubectl apply -f manifests, wait, print the URL
	hack/minikube.sh

# The Ansible control node's virtualenv: Debian 12 and Ubuntu 24.04 refuse `pip install` outside
# one (PEP 668, "externally-managed-environment"). The Ansible targets use it when it exists.
ANSIBLE_VENV ?= $(CURDIR)/.venv
ansible-deps test-ansible ansible-e2e ansible-local: export PATH := $(if $(wildcard $(ANSIBLE_VENV)/bin/ansible-playbook),$(ANSIBLE_VENV)/bin:)$(PATH)

.PHONY: ansible-deps
ansible-deps: ## the Ansible control node: a virtualenv (.venv) with ansible-core and the linters at pinned versions, the collections
	@# Debian and Ubuntu ship venv's pip in a package of its own: installed with apt when missing (asks for sudo).
	@python3 -c 'import ensurepip' 2>/dev/null || { command -v apt-get >/dev/null || { echo "python3 cannot make a virtualenv (venv, ensurepip)"; exit 1; }; \
	  s=$$([ "$$(id -u)" = 0 ] || echo sudo); echo "installing python3-venv (apt)"; $$s apt-get update -qq && $$s apt-get install -y -qq python3-venv; }
	python3 -m venv $(ANSIBLE_VENV)
	$(ANSIBLE_VENV)/bin/pip install -q -r ansible/requirements.txt
	cd ansible && $(ANSIBLE_VENV)/bin/ansible-galaxy collection install -r requirements.yml
	@echo "ansible: $(ANSIBLE_VENV)/bin (make's Ansible targets use it; in a shell: source .venv/bin/activate)"

.PHONY: test-ansible
test-ansible: ## lint the playbook and converge it twice on a systemd Debian 12 container, over SSH as a non-root user with sudo
	hack/ansible-test.sh

.PHONY: ansible-e2e
ansible-e2e: ## ansible/README.md's block for real on this host over SSH as a non-root user with sudo (minikube with the none driver), twice, the second with changed=0
	hack/ansible-e2e.sh

.PHONY: ansible-local
ansible-local: ## run the whole playbook on this machine (CI runners, docker driver), twice, the second with changed=0
	cd ansible && ansible-playbook -i inventory/local.yml site.yml -e docker_source=docker -e minikube_user=$$(id -un)
	cd ansible && ansible-playbook -i inventory/local.yml site.yml -e docker_source=docker -e minikube_user=$$(id -un) \
	  | tee /tmp/readocr-ansible-second.log
	grep -qE 'changed=0 +unreachable=0 +failed=0' /tmp/readocr-ansible-second.log

.PHONY: ci-job
ci-job: ## run a GitHub workflow job's run steps here: make ci-job WORKFLOW=ci.yml JOB=lint
	$(GO) run ./test/workflows/runjob -workflow $${WORKFLOW:-ci.yml} -job $${JOB:-lint}

.PHONY: clean
clean: ## remove build output
	rm -rf bin
