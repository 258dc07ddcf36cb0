# The two commands of the README are `make run` and `make test`.
.PHONY: setup run run-postgres run-dapr test lint bench dapr compose-check

PORT ?= 8000

setup:
	bash scripts/setup.sh

run: setup  ## install everything, serve on the embedded runtime with SQLite
	python3 -m api.cli serve --port $(PORT)

run-dapr: setup dapr  ## placement + scheduler + daprd + the app, on loopback
	python3 -m api.cli serve --runtime dapr --port $(PORT)

test:  ## install what is missing, then the whole test suite
	bash scripts/test.sh

lint:
	python3 -m ruff check .

dapr:  ## build daprd, placement and scheduler from the Go module (cached)
	bash scripts/build_dapr.sh

bench: setup  ## the service-core benchmark (embedded runtime + PostgreSQL vs pgbench)
	python3 -m benchmarks.core

compose-check:
	docker-compose -f docker-compose.yml config -q
