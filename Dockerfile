# syntax=docker/dockerfile:1
# Multi-stage build: a static binary on a distroless, non-root runtime.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/mqim ./cmd/mqim

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/mqim /usr/local/bin/mqim
COPY configs/mqim.yaml /etc/mqim/mqim.yaml
ENV MQIM_DATA_DIR=/data
VOLUME ["/data"]
# REST, MQTT, MQTT over WebSocket, MQTT over TLS (when a certificate is configured)
EXPOSE 8080 1883 8083 8883
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/mqim"]
CMD ["--config", "/etc/mqim/mqim.yaml"]
