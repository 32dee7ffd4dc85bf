//go:build tesseract_static

package gosseract

// readocr: with -tags tesseract_static, Tesseract and Leptonica are linked into the binary and
// nolibs_static.c stands in for libarchive and libcurl, which Debian's libtesseract links for
// features a server never uses (traineddata inside archives, image URLs given to the CLI).
// Their closure (ICU, TLS, LDAP, Kerberos, XML: ~50 libraries, 60 MB) then stays out of the
// container image. The image format libraries stay shared.

// #cgo CXXFLAGS: -std=c++0x
// #cgo CPPFLAGS: -Wno-unused-result
// #cgo LDFLAGS: -Wl,-Bstatic -ltesseract -lleptonica -Wl,-Bdynamic -lpng16 -ljpeg -ltiff -lwebp -lwebpmux -lgif -lopenjp2 -lz -lgomp -lstdc++ -lm
import "C"
