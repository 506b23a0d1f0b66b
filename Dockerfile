# opslens in a container: `docker build -t opslens . && docker run --rm opslens` runs `opslens demo`.
# The dependencies install from requirements.lock, the versions CI passed with.
FROM python:3.11-slim-bookworm

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    MPLBACKEND=Agg

# LightGBM and XGBoost need the OpenMP runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/opslens
COPY requirements.lock pyproject.toml README.md ./
COPY src ./src
# the fingerprint kernels compiled into numba's cache at build time: no compile on first use
RUN pip install -c requirements.lock . \
    && python -m opslens.features.warm \
    && useradd --uid 10001 --create-home --shell /usr/sbin/nologin opslens
USER 10001
WORKDIR /home/opslens

ENTRYPOINT ["opslens"]
CMD ["demo"]
