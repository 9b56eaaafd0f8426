#!/bin/bash
# Runs once, when the TimescaleDB container creates its database: the group roles of the schema
# (gpuhealth db migrate creates them too, if absent) and the services' login roles, with the
# passwords from the environment. The sink and scorer log in as gpuhealth_sink (writer), the
# API and Grafana as gpuhealth_api (reader).
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v writer_pw="$GPUHEALTH_WRITER_PASSWORD" -v reader_pw="$GPUHEALTH_READER_PASSWORD" <<'SQL'
SELECT 'CREATE ROLE gpuhealth_writer NOLOGIN'
  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'gpuhealth_writer') \gexec
SELECT 'CREATE ROLE gpuhealth_reader NOLOGIN'
  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'gpuhealth_reader') \gexec
SELECT format('CREATE ROLE gpuhealth_sink LOGIN PASSWORD %L IN ROLE gpuhealth_writer', :'writer_pw')
  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'gpuhealth_sink') \gexec
SELECT format('CREATE ROLE gpuhealth_api LOGIN PASSWORD %L IN ROLE gpuhealth_reader', :'reader_pw')
  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'gpuhealth_api') \gexec
SQL
