# tongban — the two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test setup proto bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/tongban run scenarios/quickstart.toml

test: $(STAMP)
	$(PY) -m pytest

# Regenerate the committed protobuf / gRPC code from proto/tongban/v1/*.proto.
proto: $(STAMP)
	$(PY) -m grpc_tools.protoc -Iproto --python_out=. --pyi_out=. --grpc_python_out=. proto/tongban/v1/*.proto

# Benchmark against a bare gRPC relay (bench/README.md); results in bench/results/latest.json.
bench: $(STAMP)
	$(PY) -m pip install --quiet 'uvloop>=0.19,<1' 'py-spy>=0.3,<1'
	$(PY) -m bench

# buf lint and buf breaking (buf from the npm package @bufbuild/buf, when node is present).
lint:
	bash tools/lint.sh

clean:
	rm -rf $(VENV) runs .pytest_cache
