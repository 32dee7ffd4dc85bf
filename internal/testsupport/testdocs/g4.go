package testdocs

// #cgo pkg-config: lept
// #include <stdlib.h>
// #include <leptonica/allheaders.h>
//
// /* A 1-bit pix of w x h from 8-bit gray rows (black below 128), CCITT G4 encoded by
//    Leptonica; the caller frees it with l_CIDataDestroy. */
// static L_COMP_DATA* g4(const unsigned char* gray, int w, int h, int stride) {
//     PIX* pix = pixCreate(w, h, 1);
//     if (!pix) return NULL;
//     l_uint32* data = pixGetData(pix);
//     int wpl = pixGetWpl(pix);
//     for (int y = 0; y < h; y++)
//         for (int x = 0; x < w; x++)
//             if (gray[(size_t)y * stride + x] < 128) SET_DATA_BIT(data + (size_t)y * wpl, x);
//     L_COMP_DATA* cid = NULL;
//     pixGenerateCIData(pix, L_G4_ENCODE, 0, 0, &cid);
//     pixDestroy(&pix);
//     return cid;
// }
// static void freeCID(L_COMP_DATA* cid) { l_CIDataDestroy(&cid); }
import "C"

import (
	"fmt"
	"image"
	"unsafe"
)

// G4 is img thresholded to black and white and encoded as CCITT Group 4 (what a scanner or a fax
// writes for bilevel pages), by Leptonica: the bytes a PDF's /CCITTFaxDecode stream holds, with
// /K -1 and, when blackIs1, /BlackIs1 true.
func G4(img *image.Gray) (data []byte, blackIs1 bool, err error) {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	if w == 0 || h == 0 {
		return nil, false, fmt.Errorf("empty image")
	}
	cid := C.g4((*C.uchar)(unsafe.Pointer(&img.Pix[0])), C.int(w), C.int(h), C.int(img.Stride))
	if cid == nil {
		return nil, false, fmt.Errorf("leptonica could not encode a %dx%d page as G4", w, h)
	}
	defer C.freeCID(cid)
	return C.GoBytes(unsafe.Pointer(cid.datacomp), C.int(cid.nbytescomp)), cid.minisblack != 0, nil
}
