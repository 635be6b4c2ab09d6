# Build: docker build -t authgateway .   (no other step needed)
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/authgateway ./cmd/authgateway \
 && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/demo-upstream ./cmd/demo-upstream

# Static binary on a minimal, non-root runtime image (no shell, no package manager).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/authgateway /usr/local/bin/authgateway
COPY --from=build /out/demo-upstream /usr/local/bin/demo-upstream
COPY deploy/compose/gateway.yaml /etc/authgateway/gateway.yaml
ENV AUTHGATEWAY_CONFIG=/etc/authgateway/gateway.yaml
USER 65532:65532
EXPOSE 8080 9090
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/authgateway", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/authgateway"]
CMD ["serve"]
