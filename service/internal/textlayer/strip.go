package textlayer

import (
	"bytes"
)

// Stripping an earlier OCR layer (ocr_mode=redo_ocr, as OCRmyPDF's --redo-ocr): the text
// objects of a content stream that show text only in rendering mode 3 (invisible: what
// Tesseract, OCRmyPDF and readocr write over a scan) are removed; every text object that shows
// something visible is kept as it is, byte for byte. A removed object's text state operators
// (Tf, Tc, Tw, Tz, TL, Ts, Tr) and the graphics state ones it holds (colours, gs, w, ...) are
// kept, outside any text object where the standard allows them: a later visible object may
// rely on the font an invisible one selected. Its positioning and showing operators go.

// textShowing are the operators that show text; textPositioning those that only move within
// a text object (gone with it).
var (
	textShowing     = map[string]bool{"Tj": true, "TJ": true, "'": true, `"`: true}
	textPositioning = map[string]bool{"Td": true, "TD": true, "Tm": true, "T*": true}
)

// invisibleMode is the text rendering mode that paints nothing (ISO 32000-1, 9.3.6).
const invisibleMode = "3"

// op is one operation of a content stream: its operands and operator, as bytes of the stream.
type op struct {
	start, end int // the operation's span, from its first operand to its operator's end
	name       string
	operands   [][]byte
}

// stripInvisible returns content without its invisible text objects, and how many it removed
// (0: content is returned as it is).
func stripInvisible(content []byte) ([]byte, int) {
	ops, ok := operations(content)
	if !ok {
		return content, 0 // what cannot be parsed is not touched
	}
	var out bytes.Buffer
	removed := 0
	mode := "0"        // the text rendering mode in effect
	var saved []string // its values saved by q
	blockStart := -1   // the index of the open text object's BT, or -1
	visible := false   // the open text object shows visible text
	last := 0          // content[last:] is not yet written
	for i, o := range ops {
		switch o.name {
		case "q":
			saved = append(saved, mode)
		case "Q":
			if n := len(saved); n > 0 {
				mode, saved = saved[n-1], saved[:n-1]
			}
		case "Tr":
			if len(o.operands) == 1 {
				mode = string(o.operands[0])
			}
		case "BT":
			blockStart, visible = i, false
		case "ET":
			if blockStart < 0 {
				continue
			}
			if !visible {
				out.Write(content[last:ops[blockStart].start])
				for _, k := range ops[blockStart+1 : i] {
					keepOutsideText(&out, content, k)
				}
				last = o.end
				removed++
			}
			blockStart = -1
		}
		if blockStart >= 0 && textShowing[o.name] && mode != invisibleMode {
			visible = true
		}
	}
	if removed == 0 {
		return content, 0
	}
	out.Write(content[last:])
	return out.Bytes(), removed
}

// keepOutsideText writes what of operation o, in a removed text object, stays.
func keepOutsideText(out *bytes.Buffer, content []byte, o op) {
	switch {
	case o.name == "BT" || o.name == "ET" || textPositioning[o.name] || o.name == "Tj" || o.name == "TJ" || o.name == "'":
		return
	case o.name == `"` && len(o.operands) == 3: // aw ac string ": its spacings stay
		out.WriteString("\n")
		out.Write(o.operands[0])
		out.WriteString(" Tw ")
		out.Write(o.operands[1])
		out.WriteString(" Tc")
		return
	}
	out.WriteString("\n")
	out.Write(content[o.start:o.end])
}

// operations splits a content stream into operations; false when it holds what this lexer does
// not know (an unterminated string or array), which is then left alone.
func operations(b []byte) ([]op, bool) {
	var ops []op
	var operands [][]byte
	start := -1
	i := 0
	for i < len(b) {
		c := b[i]
		switch {
		case isSpace(c):
			i++
			continue
		case c == '%':
			for i < len(b) && b[i] != '\n' && b[i] != '\r' {
				i++
			}
			continue
		}
		tokStart := i
		end, operator, ok := token(b, i)
		if !ok {
			return nil, false
		}
		if start < 0 {
			start = tokStart
		}
		if !operator {
			operands = append(operands, b[tokStart:end])
			i = end
			continue
		}
		name := string(b[tokStart:end])
		if name == "BI" { // an inline image: its data, up to EI, is binary
			ei := inlineImageEnd(b, end)
			if ei < 0 {
				return nil, false
			}
			end = ei
		}
		ops = append(ops, op{start: start, end: end, name: name, operands: operands})
		operands, start, i = nil, -1, end
	}
	return ops, len(operands) == 0
}

// token is the end of the token at b[i], and whether it is an operator.
func token(b []byte, i int) (end int, operator bool, ok bool) {
	switch c := b[i]; {
	case c == '(':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '\\':
				j++
			case '(':
				depth++
			case ')':
				if depth--; depth == 0 {
					return j + 1, false, true
				}
			}
		}
		return 0, false, false
	case c == '<' && i+1 < len(b) && b[i+1] == '<', c == '[':
		return nested(b, i)
	case c == '<':
		j := bytes.IndexByte(b[i:], '>')
		if j < 0 {
			return 0, false, false
		}
		return i + j + 1, false, true
	case c == '/':
		j := i + 1
		for j < len(b) && !isSpace(b[j]) && !isDelim(b[j]) {
			j++
		}
		return j, false, true
	case c == ')' || c == '>' || c == ']' || c == '{' || c == '}':
		return 0, false, false
	}
	j := i
	for j < len(b) && !isSpace(b[j]) && !isDelim(b[j]) {
		j++
	}
	if j == i {
		return 0, false, false
	}
	w := b[i:j]
	number := true
	for _, c := range w {
		if !(c >= '0' && c <= '9' || c == '.' || c == '-' || c == '+') {
			number = false
		}
	}
	lit := string(w) == "true" || string(w) == "false" || string(w) == "null"
	return j, !number && !lit, true
}

// nested is the end of the array or dictionary at b[i], the strings in it skipped as strings.
func nested(b []byte, i int) (int, bool, bool) {
	depth := 0
	for j := i; j < len(b); {
		switch {
		case b[j] == '(':
			end, _, ok := token(b, j)
			if !ok {
				return 0, false, false
			}
			j = end
			continue
		case b[j] == '[' || (b[j] == '<' && j+1 < len(b) && b[j+1] == '<'):
			depth++
			if b[j] == '<' {
				j++
			}
		case b[j] == ']' || (b[j] == '>' && j+1 < len(b) && b[j+1] == '>'):
			depth--
			if b[j] == '>' {
				j++
			}
			if depth == 0 {
				return j + 1, false, true
			}
		}
		j++
	}
	return 0, false, false
}

// inlineImageEnd is the end of the EI that closes the inline image whose dictionary starts at
// b[from], or -1.
func inlineImageEnd(b []byte, from int) int {
	id := bytes.Index(b[from:], []byte("ID"))
	if id < 0 {
		return -1
	}
	for j := from + id + 3; j+2 <= len(b); j++ {
		if b[j] == 'E' && b[j+1] == 'I' && isSpace(b[j-1]) && (j+2 == len(b) || isSpace(b[j+2])) {
			return j + 2
		}
	}
	return -1
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\f' || c == 0
}

func isDelim(c byte) bool {
	return bytes.IndexByte([]byte("()<>[]{}/%"), c) >= 0
}
