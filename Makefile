# The two commands of the README are `make run` and `make test`.
.PHONY: setup setup-test run run-postgres run-dapr test lint bench dapr compose-check

PORT ?= 8000

PY := .venv/bin/python

setup:  ## the virtual environment .venv with what `make run` needs
	bash scripts/setup.sh run

setup-test:  ## + PostgreSQL, docker-compose, Go and the dev/bench extras
	bash scripts/setup.sh test

run: setup  ## install everything, serve on the embedded runtime with SQLite
	$(PY) -m api.cli serve --port $(PORT)

run-dapr: setup-test dapr  ## placement + scheduler + daprd + the app, on loopback
	$(PY) -m api.cli serve --runtime dapr --port $(PORT)

test:  ## install what is missing, then the whole test suite
	bash scripts/test.sh

lint: setup-test
	$(PY) -m ruff check .

dapr:  ## build daprd, placement and scheduler from the Go module (cached)
	bash scripts/build_dapr.sh

bench: setup-test  ## the service-core benchmark (embedded runtime + PostgreSQL vs pgbench)
	$(PY) -m benchmarks.core

.PHONY: bench-throughput
bench-throughput: setup-test dapr  ## issue 11's throughput targets: both runtimes vs pgbench (wrk)
	$(PY) -m benchmarks.throughput --out /tmp/throughput.json

compose-check:
	docker-compose -f docker-compose.yml config -q
