FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# The announce pipeline compiled with Cython into build/speedups/ (setup.py, `make speedups`),
# checked to load, and run (PBTS_SPEEDUPS=1, tracker/speedups.py); the compiler and the
# intermediate files are removed afterwards.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && python setup.py --quiet build_ext \
    && PBTS_SPEEDUPS=1 python -c "import tracker.announce, tracker.announce.wire_http, tracker.trackerd" \
    && apt-get purge -y gcc libc6-dev && apt-get autoremove -y \
    && rm -rf /var/lib/apt/lists/* build/cython build/temp.*
ENV PBTS_SPEEDUPS=1
RUN useradd --create-home pbts && chown -R pbts /app
USER pbts
EXPOSE 8000
CMD ["gunicorn", "pbts_site.wsgi:application", "--bind", "0.0.0.0:8000"]
