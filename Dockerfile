# syntax=docker/dockerfile:1
# Multi-stage build: MQTT.js for the browser demo from npm, then a static
# binary on a distroless, non-root runtime. internal/repocheck's
# TestDockerfile checks the rules this file keeps; .ci/run builds and runs
# the image when a Docker daemon is available.

# The demo's MQTT.js: web/package.json, pinned by web/package-lock.json.
FROM node:20-bookworm-slim AS web
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# What `make web` does outside Docker: the browser bundle, embedded by go build.
COPY --from=web /web/node_modules/mqtt/dist/mqtt.min.js web/demo/files/vendor/mqtt.min.js
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/mqim ./cmd/mqim \
	&& mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/mqim /usr/local/bin/mqim
COPY configs/mqim.yaml /etc/mqim/mqim.yaml
# The data directory belongs to the runtime user (nonroot, uid 65532): a
# fresh named volume takes the directory's owner, so the server can write
# its store, credentials and attachments there.
COPY --from=build --chown=nonroot:nonroot /out/data /data
ENV MQIM_DATA_DIR=/data
VOLUME ["/data"]
# REST, MQTT, MQTT over WebSocket, MQTT over TLS (when a certificate is configured)
EXPOSE 8080 1883 8083 8883
USER nonroot:nonroot
# `mqim health` exits 0 when /readyz on the configured http.addr answers 200.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
	CMD ["/usr/local/bin/mqim", "health", "--config", "/etc/mqim/mqim.yaml"]
ENTRYPOINT ["/usr/local/bin/mqim"]
CMD ["--config", "/etc/mqim/mqim.yaml"]
