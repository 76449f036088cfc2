# blackwell.vllm: the two commands of the README, and the pieces they are made of.
#   make site   set up this machine, bring the lab up, run site.yml against inventories/lab
#   make test   set up this machine, lint, unit tests, molecule scenarios against lab containers
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
VENV ?= .venv
PY ?= python3.11
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PYTHONUNBUFFERED := 1
SCENARIOS ?= default gpu_info nvidia_driver qsfp_network nccl ray_cluster vllm proxy offline proxmox
INVENTORY ?= inventories/lab

.PHONY: setup apt venv lab-up lab-down lab-status site lint unit preflight-corpus sanity package molecule test clean

setup: apt venv

# The Debian packages of the controller. chromium: the unit test that opens the fleet report's HTML
# in a headless browser. tinyproxy: the site's proxy of molecule `proxy`, run as the scenario's own
# process (the system service stays unused). The stamp names the list, so a machine set up before
# a package joined it installs that package on the next run.
APT_PACKAGES := lxc debootstrap nftables openssh-client rsync iproute2 equivs dpkg-dev apt-utils chromium tinyproxy
APT_STAMP := .cache/apt-$(shell echo $(APT_PACKAGES) | cksum | cut -d' ' -f1).done
apt: $(APT_STAMP)
$(APT_STAMP):
	@mkdir -p .cache
	@echo "==> apt: $(APT_PACKAGES)"
	@if [ "$$(id -u)" != 0 ]; then echo "make setup needs root (it installs LXC and creates containers)"; exit 1; fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES) >/dev/null
	@touch $@

venv: $(VENV)/.done
$(VENV)/.done: requirements.txt
	@echo "==> venv: $(VENV) from requirements.txt"
	@command -v $(PY) >/dev/null || { echo "$(PY) not found: the controller needs Python 3.11+ (ansible-core 2.19)"; exit 1; }
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements.txt
	@touch $@

lab-up: setup
	lab/lab up

lab-down:
	lab/lab down

lab-status:
	lab/lab status

site: lab-up
	@echo "==> site.yml against $(INVENTORY)"
	time ansible-playbook site.yml -i $(INVENTORY)

lint: venv
	@echo "==> yamllint"
	yamllint --strict .
	@echo "==> ansible-lint (production profile)"
	ansible-lint --offline

unit: venv
	@echo "==> unit tests"
	pytest

# ansible-test sanity on the collection as built and installed (tests/sanity/ignore-2.19.txt says
# why each ignored finding stays); its virtualenvs come from PyPI once, into .cache/sanity.
sanity: venv
	@echo "==> ansible-test sanity"
	time tests/collection/ansible-test-sanity

# Build the tarball, check what it holds, install it into a temporary collections path and run
# ansible-playbook blackwell.vllm.site from there (tests/collection/test_installed_collection.py).
package: venv
	@echo "==> collection tarball, installed: blackwell.vllm.site"
	time pytest -q tests/collection

molecule: setup
	@for s in $(SCENARIOS); do echo "==> molecule scenario $$s"; time molecule test -s $$s || exit 1; done

# Every bad inventory of tests/integration/bad_inventories refused by preflight before any change,
# on a two-node lab of its own (mol-preflight, index 17; brought down afterwards).
preflight-corpus: setup
	@echo "==> preflight refuses every bad inventory before any change"
	time pytest -q tests/integration

# make test: two lanes at once, each a lab of its own (the scenarios wait on their nodes much of
# the time, and the machine has two cores): lane A runs its scenarios in the foreground; lane B runs
# its scenarios and then the checks that need no scenario lab (lint, unit, the preflight corpus on its
# own small lab, sanity, package), with its output in .cache/lane-b.log, shown at the end. Both must
# pass. `make molecule` still runs every scenario one after the other.
CHECKS := lint unit preflight-corpus sanity package
# proxy first: its check that pip asked the index through the proxy must not meet index pages another
# scenario's pip left in the shared cache minutes before (pip keeps them up to ten minutes).
# The lanes are balanced on the scenario times measured in docs/benchmarks.md (make test from a fresh
# clone): lane A, the scenarios alone (about 59 minutes); lane B, fewer scenarios and then the checks (about 56).
LANE_A ?= proxy default vllm gpu_info nccl
LANE_B ?= proxmox nvidia_driver qsfp_network ray_cluster offline
test: setup
	@mkdir -p .cache && rm -f .cache/lane-b.rc
	@echo "==> lane A: molecule $(LANE_A); lane B beside it: molecule $(LANE_B), then $(CHECKS) (output: .cache/lane-b.log, shown at the end)"
	@( start=$$(date +%s); $(MAKE) --no-print-directory molecule SCENARIOS="$(LANE_B)"; m=$$?; \
	   echo "==> lane B's scenarios done in $$(( $$(date +%s) - start ))s (exit $$m)"; \
	   $(MAKE) --no-print-directory $(CHECKS); c=$$?; echo "==> $(CHECKS) exit $$c"; \
	   [ "$$m" = 0 ] && [ "$$c" = 0 ]; echo $$? > .cache/lane-b.rc ) > .cache/lane-b.log 2>&1 & \
	  laneb=$$!; set +e; start=$$(date +%s); \
	  $(MAKE) --no-print-directory molecule SCENARIOS="$(LANE_A)"; lanea=$$?; \
	  echo "==> lane A done in $$(( $$(date +%s) - start ))s (exit $$lanea); waiting for lane B"; \
	  wait $$laneb; laneb=$$(cat .cache/lane-b.rc 2>/dev/null || echo 1); \
	  echo "==> lane B done after $$(( $$(date +%s) - start ))s (exit $$laneb):"; cat .cache/lane-b.log; \
	  echo "==> make test: lane A exit $$lanea, lane B exit $$laneb, $$(( $$(date +%s) - start ))s"; \
	  [ "$$lanea" = 0 ] && [ "$$laneb" = 0 ]

clean: lab-down
	rm -rf $(VENV) .cache
