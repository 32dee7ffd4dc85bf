package imageinput

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// maxJPEGScans bounds the scans of a progressive JPEG. libjpeg re-reads the whole coefficient
// buffer for every scan, so a small file of thousands of tiny scans costs minutes of CPU before
// Tesseract starts (a "scan bomb"); real encoders write about 10.
const maxJPEGScans = 100

// jpegInfo is what the segment walk learns from a JPEG before any decoder runs.
type jpegInfo struct {
	orientation int // EXIF orientation, 1-8; 0 when absent or unreadable
	scans       int
	components  int // of the first frame: 1 gray, 3 colour, 4 CMYK (0: no frame header seen)
}

// readJPEG walks the JPEG's segments: it reads the EXIF orientation (the only tag used) and
// counts the scans. The walk is linear in len(b) and allocates nothing, whatever the file
// claims: a segment's length can only move forward within b.
//
// goexif, used before, follows IFD chains (an A -> B -> A cycle never ends) and copies each tag's
// declared byte count (a 136 KB file of 5,400 tags cost 3.4 GB); the orientation lives in IFD0,
// so nothing beyond IFD0 is read here.
func readJPEG(b []byte) (jpegInfo, error) {
	var info jpegInfo
	if len(b) < 4 || b[0] != 0xFF || b[1] != 0xD8 {
		return info, errors.New("no SOI marker")
	}
	exifSeen := false
	p := 2
	for p < len(b) {
		if b[p] != 0xFF {
			return info, fmt.Errorf("no marker at offset %d", p)
		}
		for p < len(b) && b[p] == 0xFF { // fill bytes
			p++
		}
		if p >= len(b) {
			break
		}
		marker := b[p]
		p++
		switch {
		case marker == 0xD9: // EOI
			return info, nil
		case marker >= 0xD0 && marker <= 0xD7, marker == 0x01: // standalone markers
			continue
		}
		if p+2 > len(b) {
			return info, errors.New("truncated segment header")
		}
		length := int(binary.BigEndian.Uint16(b[p:]))
		if length < 2 || p+length > len(b) {
			return info, fmt.Errorf("segment of length %d at offset %d runs past the end", length, p)
		}
		payload := b[p+2 : p+length]
		p += length
		switch marker {
		case 0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF: // SOFn
			if info.components == 0 && len(payload) >= 6 {
				info.components = int(payload[5])
			}
		case 0xE1: // APP1: the first Exif segment counts, as for every reader
			if !exifSeen && len(payload) >= 6 && string(payload[:6]) == "Exif\x00\x00" {
				exifSeen = true
				info.orientation = exifOrientation(payload[6:])
			}
		case 0xDA: // SOS: entropy-coded data follows, up to the next marker that is not RSTn
			info.scans++
			if info.scans > maxJPEGScans {
				return info, fmt.Errorf("more than %d scans", maxJPEGScans)
			}
			p = skipEntropyCoded(b, p)
		}
	}
	// No EOI: libjpeg pads a truncated file with gray (Leptonica reads it); so do we.
	return info, nil
}

// skipEntropyCoded returns the offset of the first marker after entropy-coded data starting at
// p: 0xFF followed by 0x00 (a stuffed byte) or RST0-7 belongs to the data; 0xFF 0xFF is fill
// before a marker.
func skipEntropyCoded(b []byte, p int) int {
	for p+1 < len(b) {
		if b[p] == 0xFF && b[p+1] != 0x00 && (b[p+1] < 0xD0 || b[p+1] > 0xD7) {
			return p
		}
		p++
	}
	return len(b)
}

// exifOrientation reads tag 0x0112 from IFD0 of a TIFF-structured EXIF block: one IFD, at most
// as many entries as fit in the block, no pointers followed. 0 when absent or malformed.
func exifOrientation(t []byte) int {
	if len(t) < 8 {
		return 0
	}
	var order binary.ByteOrder
	switch string(t[:4]) {
	case "II*\x00":
		order = binary.LittleEndian
	case "MM\x00*":
		order = binary.BigEndian
	default:
		return 0
	}
	ifd := order.Uint32(t[4:8])
	if ifd < 8 || uint64(ifd)+2 > uint64(len(t)) {
		return 0
	}
	n := int(order.Uint16(t[ifd:]))
	entries := t[ifd+2:]
	n = min(n, len(entries)/12)
	for i := range n {
		e := entries[i*12 : i*12+12]
		if order.Uint16(e[0:2]) != 0x0112 {
			continue
		}
		// SHORT, count >= 1: the value is left-justified in the 4-byte field.
		if order.Uint16(e[2:4]) != 3 || order.Uint32(e[4:8]) < 1 {
			return 0
		}
		if v := int(order.Uint16(e[8:10])); v >= 1 && v <= 8 {
			return v
		}
		return 0
	}
	return 0
}
