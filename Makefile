# The front door. `make run` and `make test` install what they need on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PROTOS := $(shell find protos -name '*.proto')
INSTALLED := $(VENV)/.installed
GENERATED := gen/descriptors.pb

.PHONY: install proto run test test-slow test-all test-fast lint bench clean
.DEFAULT_GOAL := help

help:
	@echo "make run    - run taskmgr locally (installs on first use)"
	@echo "make test   - the test suite without the slow tests (installs on first use; finds,"
	@echo "              starts or borrows PostgreSQL and RabbitMQ)"
	@echo "make test-slow - the slow tests (fuzzing, faults, real processes); make test-all: both"
	@echo "make lint   - ruff"
	@echo "make proto  - regenerate gRPC stubs and the descriptor set"
	@echo "make bench  - how to run the benchmarks (bench/README.md)"

install: $(INSTALLED) $(GENERATED)

$(INSTALLED): pyproject.toml requirements.lock
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c requirements.lock -e '.[dev]'
	# generated stubs live in gen/ (not committed): put it on the venv's path
	echo "$(CURDIR)/gen" > "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/taskmgr-gen.pth"
	touch $@

proto: $(GENERATED)

# Python stubs, mypy stubs, and one descriptor set with source info (comments become docs).
$(GENERATED): $(PROTOS) | $(INSTALLED)
	rm -rf gen && mkdir -p gen
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m grpc_tools.protoc \
	  -Iprotos -I"$$($(BIN)/python -c 'import google.api.annotations_pb2 as m, pathlib; print(pathlib.Path(m.__file__).parents[2])')" \
	  --python_out=gen --grpc_python_out=gen --mypy_out=quiet:gen --mypy_grpc_out=quiet:gen \
	  --include_imports --include_source_info --descriptor_set_out=$@ $(PROTOS)

run: install
	$(BIN)/python -m common.devrun

# The test command finds, starts or borrows PostgreSQL and RabbitMQ first
# (tests/support/services.py), then runs pytest pointed at them.
TEST_SERVICES := $(BIN)/python -m tests.support.services --
PYTEST := $(BIN)/pytest -n 2 --dist loadgroup

# Everything but the slow tests (fuzzing, fault injection, the product as real processes).
test: install
	$(TEST_SERVICES) $(PYTEST) -m "not slow" $(PYTEST_ARGS)

# Only the slow tests.
test-slow: install
	$(TEST_SERVICES) $(PYTEST) -m slow $(PYTEST_ARGS)

# Both, as CI runs them.
test-all: test test-slow

test-fast: install
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .

bench: install
	@cat bench/README.md

clean:
	rm -rf $(VENV) gen var
