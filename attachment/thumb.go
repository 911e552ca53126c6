package attachment

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/color/palette"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"golang.org/x/image/bmp"
	"golang.org/x/image/draw"

	"github.com/mqim/mqim/chat"
)

// thumbWait bounds how long an upload waits for its turn to decode.
const thumbWait = 30 * time.Second

// decoders decode a full image of each thumbnailed format.
var decoders = map[string]func(io.Reader) (image.Image, error){
	"png":  png.Decode,
	"jpeg": jpeg.Decode,
	"gif":  gif.Decode, // first frame only
	"bmp":  bmp.Decode,
}

// errImage is the 5007 of a thumbnail that could not be made. Save only
// logs it: the upload still succeeds with the original's URL.
func errImage(format string, args ...any) error {
	return fmt.Errorf("%w: %s", chat.Errorf(chat.CodeImage, "image processing failed"), fmt.Sprintf(format, args...))
}

// thumbnail makes the thumbnail of the stored image rel (sniffed as k) and
// returns its name, <a>/<b>.sm.<ext>, in the same format as the original.
func (s *Store) thumbnail(ctx context.Context, rel string, k kind, now time.Time) (string, error) {
	w, h := int64(k.config.Width), int64(k.config.Height)
	// Check the canvas the header claims before decoding anything: the
	// decoders allocate all of it up front, whatever the file size.
	if w*h > s.opts.MaxPixels || w*h*bytesPerPixel(k.config.ColorModel) > 4*s.opts.MaxPixels {
		return "", errImage("%dx%d exceeds the %d pixel limit", w, h, s.opts.MaxPixels)
	}
	// Decodes queue behind one another, but not for ever: under a burst of
	// image uploads some are stored without a thumbnail instead.
	wait := time.NewTimer(thumbWait)
	defer wait.Stop()
	select {
	case s.thumbs <- struct{}{}:
		defer func() { <-s.thumbs }()
	case <-ctx.Done():
		return "", ctx.Err()
	case <-wait.C:
		return "", errImage("busy: no decoder free within %s", thumbWait)
	}

	f, err := s.root.Open(rel)
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }() // read only
	src, err := decoders[k.format](bufio.NewReaderSize(f, 64<<10))
	if err != nil {
		return "", errImage("decode %s: %v", k.format, err)
	}
	orient := 1
	if k.format == "jpeg" {
		orient = jpegOrientation(f)
	}

	sb := src.Bounds()
	tw, th := fit(sb.Dx(), sb.Dy(), ThumbSize)
	dst := image.NewRGBA(image.Rect(0, 0, tw, th))
	draw.CatmullRom.Scale(dst, dst.Bounds(), src, sb, draw.Src, nil)
	// The thumbnail carries no EXIF, so bake the camera's orientation in;
	// browsers apply it to the original, and the two must match.
	out := orientate(dst, orient)
	var pal color.Palette
	if p, ok := src.(*image.Paletted); ok {
		pal = p.Palette
	}

	ext := path.Ext(rel)
	thumb := strings.TrimSuffix(rel, ext) + ".sm" + ext
	tmpName := path.Join(tmpDir, randomHex(8))
	tf, err := s.root.OpenFile(tmpName, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", storageError("create", err)
	}
	// Once renamed the temporary name is gone; before that a leftover is
	// cleared by the next sweep.
	defer func() { _ = s.root.Remove(tmpName) }()
	bw := bufio.NewWriter(tf)
	if err := encode(bw, out, k.format, pal); err != nil {
		_ = tf.Close() // abandoned; the encode error is the one to report
		return "", errImage("encode %s: %v", k.format, err)
	}
	if err := errors.Join(bw.Flush(), tf.Sync(), tf.Close()); err != nil {
		return "", storageError("write", err)
	}
	if err := s.root.Chtimes(tmpName, now, now); err != nil {
		return "", storageError("chtimes", err)
	}
	s.dirs.RLock()
	defer s.dirs.RUnlock()
	if err := s.root.Link(tmpName, thumb); err != nil {
		return "", storageError("link", err)
	}
	return thumb, nil
}

// encode writes m in format. GIF thumbnails reuse the source's palette pal
// when there is one.
func encode(w io.Writer, m *image.RGBA, format string, pal color.Palette) error {
	switch format {
	case "jpeg":
		return jpeg.Encode(w, m, &jpeg.Options{Quality: 85})
	case "png":
		return png.Encode(w, m)
	case "bmp":
		return bmp.Encode(w, m)
	case "gif":
		if len(pal) == 0 {
			pal = palette.Plan9
		}
		pm := image.NewPaletted(m.Bounds(), pal)
		draw.FloydSteinberg.Draw(pm, pm.Bounds(), m, image.Point{})
		return gif.Encode(w, pm, nil)
	}
	return fmt.Errorf("no encoder for %q", format)
}

// fit returns the size of a w×h image scaled down to fit a max×max box,
// keeping the aspect ratio (never scaled up, never below 1 pixel).
func fit(w, h, max int) (int, int) {
	if w <= max && h <= max {
		return w, h
	}
	if w >= h {
		return max, clamp1((h*max + w/2) / w)
	}
	return clamp1((w*max + h/2) / h), max
}

func clamp1(n int) int {
	if n < 1 {
		return 1
	}
	return n
}

// bytesPerPixel estimates what a decoder allocates per pixel for a model.
func bytesPerPixel(m color.Model) int64 {
	switch m {
	case color.GrayModel, color.AlphaModel:
		return 1
	case color.Gray16Model, color.Alpha16Model:
		return 2
	case color.YCbCrModel:
		return 3 // 4:4:4 at worst
	case color.RGBA64Model, color.NRGBA64Model:
		return 8
	}
	if _, ok := m.(color.Palette); ok {
		return 1
	}
	return 4
}

// orientate applies an EXIF orientation (1..8) to m.
func orientate(m *image.RGBA, o int) *image.RGBA {
	if o < 2 || o > 8 {
		return m
	}
	w, h := m.Bounds().Dx(), m.Bounds().Dy()
	dw, dh := w, h
	if o >= 5 {
		dw, dh = h, w
	}
	out := image.NewRGBA(image.Rect(0, 0, dw, dh))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			var dx, dy int
			switch o {
			case 2: // mirrored
				dx, dy = w-1-x, y
			case 3: // upside down
				dx, dy = w-1-x, h-1-y
			case 4: // mirrored upside down
				dx, dy = x, h-1-y
			case 5: // transposed
				dx, dy = y, x
			case 6: // rotate 90° clockwise to display
				dx, dy = h-1-y, x
			case 7: // transversed
				dx, dy = h-1-y, w-1-x
			case 8: // rotate 90° counter-clockwise to display
				dx, dy = y, w-1-x
			}
			out.SetRGBA(dx, dy, m.RGBAAt(x, y))
		}
	}
	return out
}

// jpegOrientation returns the EXIF orientation (1..8) of the JPEG in r, or 1
// when there is none. It reads only the segments before the image data.
func jpegOrientation(r io.ReaderAt) int {
	b := make([]byte, 128<<10)
	n, _ := r.ReadAt(b, 0)
	b = b[:n]
	if len(b) < 4 || b[0] != 0xFF || b[1] != 0xD8 {
		return 1
	}
	for pos := 2; pos+4 <= len(b); {
		if b[pos] != 0xFF {
			return 1
		}
		marker := b[pos+1]
		switch {
		case marker == 0xFF: // fill byte
			pos++
			continue
		case marker == 0x01 || marker >= 0xD0 && marker <= 0xD8: // no length
			pos += 2
			continue
		case marker == 0xDA || marker == 0xD9: // image data or end: no EXIF
			return 1
		}
		seg := int(binary.BigEndian.Uint16(b[pos+2:]))
		end := pos + 2 + seg
		if seg < 2 || end > len(b) {
			return 1
		}
		if marker == 0xE1 && seg >= 8 && string(b[pos+4:pos+10]) == "Exif\x00\x00" {
			return tiffOrientation(b[pos+10 : end])
		}
		pos = end
	}
	return 1
}

// tiffOrientation reads tag 0x0112 of IFD0 of an EXIF TIFF block.
func tiffOrientation(t []byte) int {
	if len(t) < 8 {
		return 1
	}
	var bo binary.ByteOrder
	switch string(t[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 1
	}
	if bo.Uint16(t[2:]) != 42 {
		return 1
	}
	ifd := int(bo.Uint32(t[4:]))
	if ifd < 8 || ifd+2 > len(t) {
		return 1
	}
	n := int(bo.Uint16(t[ifd:]))
	for i := 0; i < n; i++ {
		e := ifd + 2 + 12*i
		if e+12 > len(t) {
			return 1
		}
		if bo.Uint16(t[e:]) != 0x0112 {
			continue
		}
		if bo.Uint16(t[e+2:]) != 3 { // SHORT
			return 1
		}
		if v := int(bo.Uint16(t[e+8:])); v >= 1 && v <= 8 {
			return v
		}
		return 1
	}
	return 1
}
