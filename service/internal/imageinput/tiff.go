package imageinput

import (
	"encoding/binary"
	"fmt"
)

// tiffIFD is what one page's image file directory says, read without decoding the page.
type tiffIFD struct {
	offset        uint64 // where the IFD is: what Leptonica seeks to for this page
	width, height int
	gray          bool  // one sample of at most 8 bits, not a palette
	err           error // the IFD could not be read: the page is undecodable
}

// maxTIFFEntries bounds the tags read from one IFD (real files have 10-30); an IFD claiming more
// is read up to it.
const maxTIFFEntries = 1000

// tiffPages walks a classic TIFF's chain of IFDs, reading each page's size from its tags. The
// walk is linear in the file: every IFD is visited once (a chain that loops back is an error)
// and each lies inside the file, so a file of n bytes has fewer than n/18 pages. Leptonica
// would allocate whatever a page's header claims; the caller checks the sizes first.
func tiffPages(b []byte) ([]tiffIFD, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("truncated header")
	}
	var bo binary.ByteOrder
	switch string(b[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return nil, fmt.Errorf("bad byte order")
	}
	if bo.Uint16(b[2:]) != 42 {
		return nil, fmt.Errorf("not a classic TIFF (BigTIFF is not supported)")
	}
	seen := map[uint64]bool{}
	var pages []tiffIFD
	for next := uint64(bo.Uint32(b[4:])); next != 0; {
		if seen[next] {
			return nil, fmt.Errorf("the chain of pages loops back after page %d", len(pages))
		}
		seen[next] = true
		if next+2 > uint64(len(b)) {
			return nil, fmt.Errorf("page %d is past the end of the file", len(pages)+1)
		}
		n := uint64(bo.Uint16(b[next:]))
		end := next + 2 + 12*n
		if end+4 > uint64(len(b)) {
			return nil, fmt.Errorf("page %d's directory is cut short", len(pages)+1)
		}
		ifd := readIFD(b, bo, next, min(n, maxTIFFEntries))
		pages = append(pages, ifd)
		next = uint64(bo.Uint32(b[end:]))
	}
	if len(pages) == 0 {
		return nil, fmt.Errorf("no pages")
	}
	return pages, nil
}

// readIFD reads the tags that decide a page's size and depth from the IFD at off, with n
// entries (already checked to lie in b).
func readIFD(b []byte, bo binary.ByteOrder, off, n uint64) tiffIFD {
	ifd := tiffIFD{offset: off}
	samples, bits, photometric := 1, 1, -1
	for i := range n {
		e := b[off+2+12*i:]
		tag, typ, count := bo.Uint16(e), bo.Uint16(e[2:]), bo.Uint32(e[4:])
		var v uint32 // the first value, for SHORT and LONG tags
		switch typ {
		case 3: // SHORT
			v = uint32(bo.Uint16(e[8:]))
			if count > 2 { // the values are elsewhere: read the first
				p := uint64(bo.Uint32(e[8:]))
				if p+2 > uint64(len(b)) {
					continue
				}
				v = uint32(bo.Uint16(b[p:]))
			}
		case 4: // LONG
			v = bo.Uint32(e[8:])
			if count > 1 {
				p := uint64(bo.Uint32(e[8:]))
				if p+4 > uint64(len(b)) {
					continue
				}
				v = bo.Uint32(b[p:])
			}
		default:
			continue
		}
		switch tag {
		case 256:
			ifd.width = int(v)
		case 257:
			ifd.height = int(v)
		case 258:
			bits = int(v)
		case 262:
			photometric = int(v)
		case 277:
			samples = int(v)
		}
	}
	if ifd.width <= 0 || ifd.height <= 0 {
		ifd.err = fmt.Errorf("its header says %dx%d", ifd.width, ifd.height)
	}
	ifd.gray = samples == 1 && bits <= 8 && photometric != 3 // 3: palette, decoded to colour
	return ifd
}
