#!/usr/bin/env bash
# Installs what building and testing the service needs on Debian/Ubuntu: a C++ compiler,
# libtesseract/libleptonica headers, the tesseract CLI (the tests compare against it and the
# benchmark's baseline runs it), the language models the tests use, qpdf and poppler-utils
# (the tests check searchable PDFs with qpdf --check and pdftotext; pdftoppm is a baseline). Elsewhere it says what
# to install; yamllint and shellcheck for make lint. Go itself is checked, not installed: distributions ship versions that are too old.
# With --test (make test), also what only the tests use: Chromium, driven headless by the web
# page's tests (test/browser), tmux, the terminal `readocr ocr` is tested in (test/terminal),
# Prometheus and promtool (test/monitoring: the alert rules' unit tests, a real scrape),
# and the language packs the language tests load (Debian's packages unpacked into
# ~/.cache/readocr/langpacks by hack/langpacks.sh, not installed: the system's model directory
# keeps what make run needs, as the image does).
# With --bench (make bench), also OCRmyPDF, the searchable-PDF baseline: MPL-2.0, and it pulls in
# Ghostscript (AGPL), so it is only ever on the benchmark's machine, never in the image, and make
# test does not need it.
set -euo pipefail

need_go="1.26"
if ! command -v go >/dev/null 2>&1; then
  echo "Go ${need_go}+ is required: install it from https://go.dev/dl/ and put it on PATH." >&2
  exit 1
fi
have_go=$(go env GOVERSION | sed 's/^go//')
if [ "$(printf '%s\n%s\n' "$need_go" "$have_go" | sort -V | head -n1)" != "$need_go" ]; then
  echo "Go ${need_go}+ is required, found ${have_go}: install it from https://go.dev/dl/." >&2
  exit 1
fi

pkgs=(g++ pkg-config libtesseract-dev libleptonica-dev tesseract-ocr tesseract-ocr-eng tesseract-ocr-osd
  tesseract-ocr-deu tesseract-ocr-fra qpdf poppler-utils yamllint shellcheck)
if [ "${1:-}" = --test ]; then
  pkgs+=(chromium tmux prometheus)
fi
if [ "${1:-}" = --bench ]; then
  pkgs+=(ocrmypdf)
fi
if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "Not a Debian/Ubuntu system: install Tesseract 5 with its development files, e.g." >&2
  echo "  macOS:  brew install tesseract leptonica pkg-config" >&2
  echo "  Fedora: dnf install tesseract-devel leptonica-devel tesseract-langpack-deu tesseract-langpack-fra gcc-c++" >&2
  exit 1
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
# The test packs (internal/testsupport/langpacks.Test): ten languages with eng, two script models.
langpacks() {
  if [ "${1:-}" = --test ]; then
    "$(dirname "$0")/langpacks.sh" "${READOCR_CACHE:-$HOME/.cache/readocr}/langpacks" \
      deu fra jpn chi-sim rus spa ita por nld script-latn script-jpan
  fi
}
if [ ${#missing[@]} -eq 0 ]; then
  langpacks "${1:-}"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "Missing packages: ${missing[*]}. Run as root: apt-get install ${missing[*]}" >&2
    exit 1
  fi
  sudo="sudo"
fi
echo "Installing: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
langpacks "${1:-}"
