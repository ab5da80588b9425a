# Junction's container image: one static binary on a distroless base, run
# as a non-root user. See docs/kubernetes.md (images cannot be built on
# the project's CI machines, so this file is checked by review and by the
# manual check described there).
#
#   docker build -t junction:dev .
#   docker run --rm -p 9470:9470 junction:dev serve

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# Static: no cgo (SQLite is the pure-Go modernc driver), no libc needed.
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -buildvcs=false \
      -ldflags="-s -w -X main.version=${VERSION}" \
      -o /out/junction ./cmd/junction

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/junction /usr/local/bin/junction
# The nonroot user's home holds the default data directory (./.junction);
# the Helm chart mounts volumes at /var/lib/junction instead.
WORKDIR /home/nonroot
USER 65532:65532
EXPOSE 9470
ENTRYPOINT ["/usr/local/bin/junction"]
CMD ["serve", "--addr", "0.0.0.0:9470"]
