package textlayer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
)

// write appends the update to src: its objects, a cross-reference section (a stream when src's
// last one is, a table otherwise) and a trailer pointing back at src's last section (/Prev).
func (u *update) write(src []byte) ([]byte, error) {
	prev, err := lastStartXRef(src)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Grow(len(src) + 64<<10)
	b.Write(src)
	if !bytes.HasSuffix(src, []byte("\n")) {
		b.WriteByte('\n')
	}
	nrs := make([]int, 0, len(u.objs)+1)
	for nr := range u.objs {
		nrs = append(nrs, nr)
	}
	slices.Sort(nrs)
	offsets := map[int]int{}
	for _, nr := range nrs {
		offsets[nr] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n", nr)
		if err := writeObject(&b, u.objs[nr]); err != nil {
			return nil, fmt.Errorf("object %d: %w", nr, err)
		}
		b.WriteString("\nendobj\n")
	}
	trailer := types.Dict{"Prev": types.Integer(prev)}
	if u.ctx.Root == nil {
		return nil, errors.New("the PDF has no catalog")
	}
	trailer["Root"] = *u.ctx.Root
	if u.ctx.Info != nil {
		trailer["Info"] = *u.ctx.Info
	}
	if len(u.ctx.ID) > 0 {
		trailer["ID"] = u.ctx.ID
	}
	xrefAt := b.Len()
	if isXRefStream(src, prev) {
		nr := u.next
		offsets[nr] = xrefAt
		nrs = append(nrs, nr)
		trailer["Size"] = types.Integer(nr + 1)
		writeXRefStream(&b, nr, nrs, offsets, trailer)
	} else {
		trailer["Size"] = types.Integer(u.next)
		b.WriteString("xref\n")
		for _, run := range runs(nrs) {
			fmt.Fprintf(&b, "%d %d\n", run[0], len(run))
			for _, nr := range run {
				fmt.Fprintf(&b, "%010d 00000 n \n", offsets[nr])
			}
		}
		b.WriteString("trailer\n" + trailer.PDFString() + "\n")
	}
	fmt.Fprintf(&b, "startxref\n%d\n%%%%EOF\n", xrefAt)
	return b.Bytes(), nil
}

func writeObject(b *bytes.Buffer, o types.Object) error {
	switch v := o.(type) {
	case nil:
		return errors.New("no value")
	case types.StreamDict:
		d := types.Dict{}
		for k, e := range v.Dict {
			d[k] = e
		}
		d["Length"] = types.Integer(len(v.Raw))
		b.WriteString(d.PDFString())
		b.WriteString("\nstream\n")
		b.Write(v.Raw)
		b.WriteString("\nendstream")
	default:
		b.WriteString(o.PDFString())
	}
	return nil
}

// runs splits sorted object numbers into runs of consecutive ones (the xref's subsections).
func runs(nrs []int) [][]int {
	var out [][]int
	for i, nr := range nrs {
		if i > 0 && nr == nrs[i-1]+1 {
			out[len(out)-1] = append(out[len(out)-1], nr)
			continue
		}
		out = append(out, []int{nr})
	}
	return out
}

// writeXRefStream writes object nr, the cross-reference stream of the objects nrs (itself
// included), uncompressed: 1 byte of type, 4 of offset, 2 of generation a row.
func writeXRefStream(b *bytes.Buffer, nr int, nrs []int, offsets map[int]int, trailer types.Dict) {
	var index types.Array
	var rows []byte
	for _, run := range runs(nrs) {
		index = append(index, types.Integer(run[0]), types.Integer(len(run)))
		for _, n := range run {
			rows = append(rows, 1)
			rows = binary.BigEndian.AppendUint32(rows, uint32(offsets[n]))
			rows = append(rows, 0, 0)
		}
	}
	d := types.Dict{"Type": types.Name("XRef"), "W": types.NewIntegerArray(1, 4, 2), "Index": index}
	for k, v := range trailer {
		d[k] = v
	}
	fmt.Fprintf(b, "%d 0 obj\n", nr)
	writeObject(b, types.StreamDict{Dict: d, Raw: rows})
	b.WriteString("\nendobj\n")
}

// lastStartXRef is the offset src's last startxref points at.
func lastStartXRef(src []byte) (int, error) {
	i := bytes.LastIndex(src, []byte("startxref"))
	if i < 0 {
		return 0, errors.New("the PDF has no startxref")
	}
	rest := bytes.TrimLeft(src[i+len("startxref"):], " \t\r\n")
	end := 0
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	off, err := strconv.Atoi(string(rest[:end]))
	if err != nil || off < 0 || off >= len(src) {
		return 0, fmt.Errorf("the PDF's startxref (%q) points nowhere", rest[:min(end, 20)])
	}
	return off, nil
}

// isXRefStream reports whether the section at off is a cross-reference stream (an object)
// rather than a table ("xref").
func isXRefStream(src []byte, off int) bool {
	return !bytes.HasPrefix(bytes.TrimLeft(src[off:], " \t\r\n"), []byte("xref"))
}
