# readocr container image: the service binary, the shared libraries it really loads, and the
# Tesseract models; nothing else (no shell, no package manager). ~43 MB with eng.
#
#   make image                                          # readocr:$(cat VERSION), ghcr.io/... too
#   docker build --build-arg LANGS="eng deu fra" .      # more languages
#   docker buildx build --platform linux/arm64 .        # cross-compiled, not emulated
#
# Tesseract and Leptonica are linked statically (-tags tesseract_static, see
# third_party/gosseract/preprocessflags_static.go): Debian's shared libtesseract needs
# libarchive and libcurl, whose closure (ICU, TLS, LDAP, XML: ~50 libraries, 60 MB) an OCR
# server never uses.
#
# The build stage runs on the builder's own platform and cross-compiles for the target (Debian's
# multiarch libraries and cross compiler), so an arm64 image needs no emulation. The base image
# is pinned by digest, which Dependabot updates; `make image` on a machine that cannot pull it
# builds from a Dockerfile with the digest and platform pin removed, and says so.

FROM --platform=$BUILDPLATFORM golang:1.26-bookworm@sha256:b305420a68d0f229d91eb3b3ed9e519fcf2cf5461da4bef997bf927e8c0bfd2b AS build
ARG TARGETARCH
ARG LANGS=eng
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# The target's libraries (Debian multiarch) and, for another architecture, its cross compiler:
# the package list is a bash array, each name one word whatever LANGS holds.
RUN arch=${TARGETARCH:-$(dpkg --print-architecture)}; \
    pkgs=(g++ pkg-config binutils tesseract-ocr-osd); \
    if [ "$arch" != "$(dpkg --print-architecture)" ]; then dpkg --add-architecture "$arch"; pkgs+=("crossbuild-essential-$arch"); fi; \
    for p in libtesseract-dev libleptonica-dev libpng-dev libjpeg-dev libtiff-dev libwebp-dev libgif-dev \
             libopenjp2-7-dev zlib1g-dev; do pkgs+=("$p:$arch"); done; \
    for l in ${LANGS}; do pkgs+=("tesseract-ocr-$l"); done; \
    apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${pkgs[@]}" \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
COPY third_party third_party
RUN go mod download
COPY VERSION ./
COPY service service
COPY client client
COPY hack/image-rootfs.sh /usr/local/bin/
ARG VERSION
RUN arch=${TARGETARCH:-$(dpkg --print-architecture)}; \
    case "$arch" in amd64) triple=x86_64-linux-gnu ;; arm64) triple=aarch64-linux-gnu ;; *) echo "no target $arch"; exit 1 ;; esac; \
    if [ "$arch" != "$(dpkg --print-architecture)" ]; then \
      export CC=$triple-gcc CXX=$triple-g++ PKG_CONFIG_PATH=/usr/lib/$triple/pkgconfig; fi; \
    CGO_ENABLED=1 GOARCH=$arch go build -trimpath -tags tesseract_static,netgo \
      -ldflags "-s -w -X main.version=${VERSION:-$(cat VERSION)}" -o /out/readocr ./service/cmd/readocr \
 && image-rootfs.sh /rootfs /out/readocr "$triple" "${LANGS}" \
 && if [ "$arch" = "$(dpkg --print-architecture)" ]; then LD_LIBRARY_PATH='' chroot /rootfs /readocr --help >/dev/null; fi

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
    TESSDATA_PREFIX=/usr/share/tesseract-ocr/5/tessdata
USER 65532:65532
EXPOSE 4000 9090
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 CMD ["/readocr", "healthcheck"]
ENTRYPOINT ["/readocr"]
