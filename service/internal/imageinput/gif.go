package imageinput

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// gifFrame is the first image of a GIF.
type gifFrame struct {
	width, height int // of the first image (its own descriptor, not the logical screen)
	end           int // offset just past its image data
}

// firstGIFFrame walks a GIF's blocks up to the end of its first image. Leptonica decodes with
// giflib's DGifSlurp, which reads every frame at the size its own descriptor gives: a 100x100
// logical screen can carry a 32000x32000 frame, and frames after the first (never used) can be
// larger still. So the size that counts is the first frame's, and only the first frame is kept
// (see firstFrameOnly).
func firstGIFFrame(b []byte) (gifFrame, error) {
	if len(b) < 13 {
		return gifFrame{}, errors.New("truncated header")
	}
	p := 13
	if packed := b[10]; packed&0x80 != 0 { // global color table
		p += 3 << ((packed & 7) + 1)
	}
	for {
		if p >= len(b) {
			return gifFrame{}, errors.New("no image before the end of the file")
		}
		switch b[p] {
		case 0x21: // extension: label, then data sub-blocks
			if p+2 > len(b) {
				return gifFrame{}, errors.New("truncated extension")
			}
			var err error
			if p, err = skipSubBlocks(b, p+2); err != nil {
				return gifFrame{}, err
			}
		case 0x2C: // image descriptor
			if p+10 > len(b) {
				return gifFrame{}, errors.New("truncated image descriptor")
			}
			f := gifFrame{width: int(binary.LittleEndian.Uint16(b[p+5:])), height: int(binary.LittleEndian.Uint16(b[p+7:]))}
			packed := b[p+9]
			p += 10
			if packed&0x80 != 0 { // local color table
				p += 3 << ((packed & 7) + 1)
			}
			p++ // LZW minimum code size
			var err error
			if f.end, err = skipSubBlocks(b, p); err != nil {
				return gifFrame{}, err
			}
			return f, nil
		case 0x3B:
			return gifFrame{}, errors.New("no image before the trailer")
		default:
			return gifFrame{}, fmt.Errorf("unknown block 0x%02x at offset %d", b[p], p)
		}
	}
}

// skipSubBlocks returns the offset after the data sub-blocks starting at p (size byte, data,
// ..., a zero size byte).
func skipSubBlocks(b []byte, p int) (int, error) {
	for {
		if p >= len(b) {
			return 0, errors.New("truncated data sub-blocks")
		}
		n := int(b[p])
		p++
		if n == 0 {
			return p, nil
		}
		p += n
	}
}

// firstFrameOnly returns b cut after the first image, with a trailer: what Leptonica then reads
// is that image alone, as it would have used it anyway.
func firstFrameOnly(b []byte, f gifFrame) []byte {
	if f.end < len(b) && b[f.end] == 0x3B {
		return b[:f.end+1]
	}
	out := make([]byte, f.end+1)
	copy(out, b[:f.end])
	out[f.end] = 0x3B
	return out
}
