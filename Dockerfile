# ferry: one static binary in a minimal, non-root image.
# The browser bundle (web/dist) is committed, so only Go is needed to build.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
# The patched pion modules go.mod replaces with (third_party/*/FERRY.md).
COPY third_party third_party
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/ferry ./cmd/ferry

# distroless/static has CA certificates (for OIDC over HTTPS) and a nonroot user.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ferry /ferry
USER nonroot:nonroot
# Web + signaling, and TURN/STUN over UDP and TCP. Publish the relay ports
# too when you set --turn-ports.
EXPOSE 8080/tcp 3478/udp 3478/tcp
ENTRYPOINT ["/ferry"]
CMD ["serve"]
