# Handwritten digit kiosk. `make` lists the verbs; each one builds the virtualenv it needs by itself.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SERVE_STAMP := $(VENV)/.serve-installed
ALL_STAMP := $(VENV)/.all-installed
VENDOR_STAMP := web/vendor/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help setup serve front train convert train-numbers convert-numbers test bench clean distclean vendor browser nginx fonts postgres systemd check-arm podman image check-image check-launcher

## help: list the verbs
help:
	@awk '/^## /{sub(/^## /, ""); i = index($$0, ":"); printf "  make %-10s %s\n", substr($$0, 1, i - 1), substr($$0, i + 2)}' $(MAKEFILE_LIST)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# constraints.txt pins the serve extra's packages (deploy/image/lock.py): the image installs the same versions.
$(SERVE_STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e '.[serve]'
	touch $@

$(ALL_STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $@ $(SERVE_STAMP)

# onnxruntime-web's wasm-only build, pinned by web/package-lock.json, copied next to the page (never a CDN).
$(VENDOR_STAMP): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	rm -rf web/vendor && mkdir -p web/vendor
	cp web/node_modules/onnxruntime-web/dist/ort.wasm.min.mjs \
	   web/node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.mjs \
	   web/node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm web/vendor/
	touch $@

## vendor: copy onnxruntime-web into web/vendor (needs npm)
vendor: $(VENDOR_STAMP)

## browser: install Debian's Chromium for the browser tests, if missing
browser:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }

## nginx: install Debian's nginx for `make front` and iproute2 for its tests, if missing
nginx:
	@PATH="$$PATH:/usr/sbin:/sbin"; command -v nginx >/dev/null && command -v ip >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq nginx-light iproute2; }

## postgres: install Debian's PostgreSQL server for the feedback store's tests, if missing
postgres:
	@ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq postgresql; }

## systemd: install Debian's systemd tooling (systemd-analyze) to check the Pi unit in the tests, if missing
systemd:
	@command -v systemd-analyze >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq systemd; }

# The package lists live with the evaluations that read the fonts (bench/drawn_sets.py, bench/people_sets.py)
# and with training, which reads others (train/strokes.py).
## fonts: install the handwriting fonts and typefaces the evaluations and training read (Debian packages), if missing
fonts: $(ALL_STAMP)
	@packages="$$($(BIN)/python -c 'from bench.drawn_sets import FONT_PACKAGES; from bench.people_sets import PRINTED_PACKAGES; from train.strokes import TRAINING_FONT_PACKAGES; print(FONT_PACKAGES, PRINTED_PACKAGES, TRAINING_FONT_PACKAGES)')"; \
	dpkg -s $$packages >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $$packages; }

## setup: install everything for development and tests (TensorFlow, Chromium, nginx, fonts, PostgreSQL, systemd tools, onnxruntime-web)
setup: $(ALL_STAMP) vendor browser nginx fonts postgres systemd

# Fewer malloc arenas keep the server's memory flat on a small device.
## serve: serve the committed model and the kiosk page on http://127.0.0.1:5000 (no TensorFlow)
serve: $(SERVE_STAMP)
	@$(MAKE) --no-print-directory vendor || echo "warning: no npm, so no in-browser model; the page will ask the server"
	MALLOC_ARENA_MAX=2 $(BIN)/python -m serve $(ARGS)

## front: nginx on HOST:PORT (default 127.0.0.1:5000) in front of one server worker per core (deploy/nginx/)
front: $(SERVE_STAMP) nginx
	@$(MAKE) --no-print-directory vendor || echo "warning: no npm, so no in-browser model; the page will ask the server"
	MALLOC_ARENA_MAX=2 $(BIN)/python -m serve.front $(ARGS)

## train: train the reader on the full MNIST set into build/ (about 35 minutes on this 2-core machine, see README)
train: $(ALL_STAMP)
	$(BIN)/python -m train $(ARGS)

## train-numbers: train the number reader on lines composed from MNIST training digits into build/numbers/
train-numbers: $(ALL_STAMP)
	$(BIN)/python -m train.numbers $(ARGS)

## convert-numbers: turn build/numbers/model.keras into artifacts/numbers-*.onnx (fp32 + int8, checked)
convert-numbers: $(ALL_STAMP)
	$(BIN)/python -m convert.numbers $(ARGS)

## convert: turn build/model.keras into artifacts/ (ONNX fp32 + int8, checked, with manifest.json)
convert: $(ALL_STAMP)
	$(BIN)/python -m convert $(ARGS)

## test: install everything the tests need and run the whole suite
test: setup
	$(BIN)/python -m pytest $(ARGS)

# qemu is called explicitly, so nothing that qemu-user-static recommends (binfmt_misc support) is installed.
## check-arm: run the server and model under qemu on Pi CPUs (Cortex-A72, A53, A76), compared with x86
check-arm: $(SERVE_STAMP)
	@command -v qemu-aarch64-static >/dev/null && [ -x /usr/sbin/debootstrap ] || { $(SUDO) apt-get update -qq && \
		$(SUDO) apt-get install -y -qq --no-install-recommends qemu-user-static debootstrap debian-archive-keyring; }
	$(SUDO) $(BIN)/python deploy/arm/check_arm.py $(ARGS)

# Debian's podman as root with runc, and what `make image` (debootstrap) and `make check-image` (nginx, PostgreSQL) use.
## podman: install Debian's podman, runc and debootstrap for the image, if missing
podman: nginx postgres
	@command -v podman >/dev/null && command -v runc >/dev/null && [ -x /usr/sbin/debootstrap ] && [ -x /usr/bin/catatonit ] || { \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends podman runc catatonit \
		containernetworking-plugins iptables debootstrap debian-archive-keyring; }

## image: build the serving image with podman, no registry (a debootstrap base, pinned wheels, web/vendor)
image: $(SERVE_STAMP) vendor podman
	$(SUDO) $(BIN)/python deploy/image/build.py

# The check reads deploy/k8s/ with PyYAML and runs serve/front.py's nginx, from the test extra.
## check-image: run the image as an operator would: read-only, kube play, 3 replicas + nginx + PostgreSQL, a rollout
check-image: image $(ALL_STAMP)
	$(SUDO) $(BIN)/python deploy/image/check_image.py $(ARGS)

# Debian's Xvfb, Openbox and xdotool stand in for the Pi's screen, desktop and finger; curl is the launcher's health check.
## check-launcher: run deploy/kiosk-browser.sh under Xvfb against `make serve`, policies installed (root; tests/test_launcher.py)
check-launcher: $(ALL_STAMP) vendor browser
	@command -v Xvfb >/dev/null && command -v xdotool >/dev/null && command -v openbox >/dev/null && command -v xprop >/dev/null && command -v curl >/dev/null || \
		{ $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends xvfb xdotool openbox x11-utils curl; }
	$(SUDO) env CHECK_LAUNCHER=1 $(BIN)/python -m pytest -q tests/test_launcher.py $(ARGS)

## bench: measure speed, memory and accuracy against the peers; writes bench/RESULTS.md
bench: setup
	$(BIN)/python -m bench $(ARGS)

## clean: remove build outputs and caches (keeps the virtualenv, the dataset and artifacts/)
clean:
	rm -rf build .pytest_cache .hypothesis web/vendor bench/out
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

## distclean: also remove the virtualenv, node_modules, the cached dataset and check-arm's downloads
distclean: clean
	rm -rf $(VENV) web/node_modules data .cache
