package imageinput

import (
	"errors"
	"image"
	"strconv"
)

// pnmConfig reads the width and height of a Netpbm header (P1-P6): magic, then
// whitespace-separated decimal fields, with '#' comments running to the end of a line.
// The standard library and x/image have no PNM decoder; the header is all we need.
func pnmConfig(b []byte) (image.Config, error) {
	if len(b) < 2 || b[0] != 'P' || b[1] < '1' || b[1] > '6' {
		return image.Config{}, errors.New("not a PNM header")
	}
	i := 2
	fields := make([]int, 0, 2)
	for len(fields) < 2 {
		// Skip whitespace and comments.
		for i < len(b) && (isSpace(b[i]) || b[i] == '#') {
			if b[i] == '#' {
				for i < len(b) && b[i] != '\n' && b[i] != '\r' {
					i++
				}
				continue
			}
			i++
		}
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' && i-start < 9 {
			i++
		}
		if start == i || (i < len(b) && !isSpace(b[i]) && b[i] != '#') {
			return image.Config{}, errors.New("malformed PNM header")
		}
		n, err := strconv.Atoi(string(b[start:i]))
		if err != nil {
			return image.Config{}, err
		}
		fields = append(fields, n)
	}
	return image.Config{Width: fields[0], Height: fields[1]}, nil
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}
