# readocr container image: the service binary, the shared libraries it really loads, and the
# Tesseract models; nothing else (no shell, no package manager). ~40 MB with eng.
#
#   docker build -t readocr:1.0.0 --build-arg VERSION=1.0.0 .
#   docker build --build-arg LANGS="eng deu fra" .      # more languages
#
# Tesseract and Leptonica are linked statically (-tags tesseract_static, see
# third_party/gosseract/preprocessflags_static.go): Debian's shared libtesseract needs
# libarchive and libcurl, whose closure (ICU, TLS, LDAP, XML: ~50 libraries, 60 MB) an OCR
# server never uses.

ARG GO_IMAGE=golang:1.26-bookworm

FROM ${GO_IMAGE} AS build
ARG LANGS=eng
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      g++ pkg-config libtesseract-dev libleptonica-dev \
      libpng-dev libjpeg-dev libtiff-dev libwebp-dev libgif-dev libopenjp2-7-dev zlib1g-dev \
      tesseract-ocr-osd $(for l in ${LANGS}; do echo "tesseract-ocr-$l"; done) \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
COPY third_party third_party
RUN go mod download
COPY service service
ARG VERSION=dev
RUN CGO_ENABLED=1 go build -trimpath -tags tesseract_static,netgo \
      -ldflags "-s -w -X main.version=${VERSION}" -o /out/readocr ./service/cmd/readocr

# The runtime tree: the binary, the closure of shared libraries ldd reports (with the loader),
# the models, a non-root user, and CA certificates for https image URLs.
RUN set -eu; root=/rootfs; td=/usr/share/tesseract-ocr/5/tessdata; \
    mkdir -p "$root/etc/ssl/certs" "$root$td"; \
    cp /out/readocr "$root/readocr"; \
    for lib in $(ldd /out/readocr | grep -o '/[^ ]*' | sort -u); do cp --parents -L "$lib" "$root/"; done; \
    for l in osd ${LANGS}; do cp "$td/$l.traineddata" "$root$td/"; done; \
    cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"; \
    echo 'nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin' > "$root/etc/passwd"; \
    echo 'nonroot:x:65532:' > "$root/etc/group"; \
    LD_LIBRARY_PATH= chroot "$root" /readocr --help >/dev/null

FROM scratch
ARG VERSION=dev
ARG REVISION=unknown
ARG SOURCE=https://github.com/readocr/readocr
LABEL org.opencontainers.image.title="readocr" \
      org.opencontainers.image.description="OCR as a service: POST /read_ocr on port 4000 (Tesseract)" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /rootfs /
ENV PORT=4000 \
    OMP_THREAD_LIMIT=1 \
    TESSDATA_PREFIX=/usr/share/tesseract-ocr/5/tessdata
USER 65532:65532
EXPOSE 4000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 CMD ["/readocr", "healthcheck"]
ENTRYPOINT ["/readocr"]
