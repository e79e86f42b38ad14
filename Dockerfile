# One image for the platform's web, worker and beat processes (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HOST=0.0.0.0 \
    PORT=8080

WORKDIR /app
COPY requirements.txt .
COPY runtime/ runtime/
RUN pip install -r requirements.txt

COPY . .
# collectstatic only reads files; the URLs keep settings from starting embedded servers.
RUN DATABASE_URL=postgres://build@localhost/build REDIS_URL=redis://localhost:6379/0 \
    DJANGO_SECRET_KEY=build SECRETS_ENCRYPTION_KEY=buildbuildbuildbuildbuildbuild12 \
    MOLECULE_HOME=/tmp/molecule-build python manage.py collectstatic --noinput -v 0 \
    && rm -rf /tmp/molecule-build \
    && useradd --create-home --uid 10001 molecule
USER molecule

EXPOSE 8080
# WEB_CONCURRENCY web processes (default: the container's cores) on one socket, supervised.
CMD ["python", "-m", "molecule_site.launcher", "web"]
