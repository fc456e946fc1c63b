# Image for the team Airflow stack (docker-compose.yaml) and for local Spark steps.
# The project and its exact pins (requirements.lock) are installed at build time.
FROM python:3.11-slim-bookworm

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    AIRFLOW_HOME=/opt/airflow \
    NUMBA_CACHE_DIR=/opt/airflow/.cache/numba \
    JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64

# Spark 3.5 needs Java 17; procps gives Spark's launcher `ps`.
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/dhs
COPY requirements.lock ./
RUN pip install --no-cache-dir uv==0.13.9 \
 && uv pip install --system --no-cache -r requirements.lock
COPY pyproject.toml README.md ./
COPY pipeline ./pipeline
COPY emr_steps ./emr_steps
# The suites go into the wheel too (pyproject data-files -> <prefix>/share/dark-halo-scope/
# expectations), so the gate finds them even where docker-compose's mount and
# DHS_EXPECTATIONS_DIR are absent (EMR nodes install the same wheel).
COPY expectations ./expectations
RUN uv pip install --system --no-cache --no-deps .

# Airflow and the local Spark steps run as an unprivileged user (uid 50000, as Airflow's own
# image), owning only AIRFLOW_HOME; the installed code stays root-owned and read-only to it.
RUN useradd --system --uid 50000 --gid 0 --home-dir /opt/airflow --shell /usr/sbin/nologin airflow \
 && mkdir -p /opt/airflow/.cache/numba \
 && chown -R 50000:0 /opt/airflow \
 && chmod 0700 /opt/airflow/.cache/numba
USER 50000
WORKDIR /opt/airflow
