# One image for the web server and both workers; docker-compose.yml picks the command.
FROM python:3.11-slim-bookworm
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 HF_HUB_OFFLINE=1 PYTHONPATH=/app/platform:/app
WORKDIR /app
# bubblewrap: the evaluation worker runs every uploaded model in a sandboxed child (evaluation.sandbox).
RUN apt-get update && apt-get install -y --no-install-recommends bubblewrap && rm -rf /var/lib/apt/lists/*
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN useradd --create-home spectra && mkdir -p /data/media /data/datasets /data/var && chown -R spectra /data
USER spectra
EXPOSE 8000
CMD ["gunicorn", "spectra.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "120"]
