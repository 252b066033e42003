# The Rasa 3.6.21 server with this project's dialogue model (NLU runs in the nlu service).
FROM rasa/rasa:3.6.21

WORKDIR /app
COPY --chown=1001 domain.yml config.yml credentials.yml ./
COPY --chown=1001 stories stories
COPY --chown=1001 docker/endpoints.yml docker/endpoints.yml
RUN rasa train core --domain domain.yml --stories stories --config config.yml \
      --out models/rasa --fixed-model-name dialogue

ENV RASA_TELEMETRY_ENABLED=false
EXPOSE 5005
CMD ["run", "--enable-api", "--model", "models/rasa/dialogue.tar.gz", "--endpoints", "docker/endpoints.yml", \
     "--credentials", "credentials.yml", "--port", "5005", "--cors", "*"]
