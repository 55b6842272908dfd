//! Content decoding for the recorded copy only (docs/interceptor.md): the client gets the bytes the upstream sent;
//! the record keeps the body decoded (gzip, deflate, br, zstd, in the order `Content-Encoding` lists them
//! undone from the last), so JSONPath sees JSON. Decoding stops at the record body limit: a small compressed
//! body cannot blow up into an unbounded record.

use std::io::Read;

#[derive(Debug, PartialEq, Eq)]
pub struct Decoded {
    pub bytes: Vec<u8>,
    /// The decoded body was longer than the limit.
    pub truncated: bool,
}

/// Decodes `body` per the `Content-Encoding` value; `Ok(None)` when there is nothing to undo (identity or no
/// header), `Err` for an encoding we do not know or a body that does not decode.
pub fn decode(content_encoding: &str, body: &[u8], limit: u64) -> Result<Option<Decoded>, String> {
    let codings: Vec<String> = content_encoding
        .split(',')
        .map(|coding| coding.trim().to_ascii_lowercase())
        .filter(|coding| !coding.is_empty() && coding != "identity")
        .collect();
    if codings.is_empty() {
        return Ok(None);
    }
    let mut current = body.to_vec();
    let mut truncated = false;
    for coding in codings.iter().rev() {
        let reader: Box<dyn Read + '_> = match coding.as_str() {
            "gzip" | "x-gzip" => Box::new(flate2::read::MultiGzDecoder::new(current.as_slice())),
            "deflate" => Box::new(Deflate::new(current.as_slice())),
            "br" => Box::new(brotli_decompressor::Decompressor::new(
                current.as_slice(),
                8192,
            )),
            "zstd" => Box::new(
                ruzstd::decoding::StreamingDecoder::new(current.as_slice())
                    .map_err(|error| format!("zstd: {error}"))?,
            ),
            other => return Err(format!("unknown content-encoding {other:?}")),
        };
        let mut out = Vec::new();
        reader
            .take(limit.saturating_add(1))
            .read_to_end(&mut out)
            .map_err(|error| format!("{coding}: {error}"))?;
        if out.len() as u64 > limit {
            out.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            truncated = true;
        }
        current = out;
    }
    Ok(Some(Decoded {
        bytes: current,
        truncated,
    }))
}

/// HTTP `deflate` is zlib-wrapped (RFC 9110), but some servers send raw deflate; accept both.
struct Deflate<'a> {
    inner: Box<dyn Read + 'a>,
}

impl<'a> Deflate<'a> {
    fn new(bytes: &'a [u8]) -> Deflate<'a> {
        // A zlib stream starts with CMF 0x78 and a header whose 16-bit value is a multiple of 31.
        let zlib = bytes.len() >= 2
            && bytes[0] & 0x0f == 8
            && (u16::from(bytes[0]) << 8 | u16::from(bytes[1])) % 31 == 0;
        let inner: Box<dyn Read + 'a> = if zlib {
            Box::new(flate2::read::ZlibDecoder::new(bytes))
        } else {
            Box::new(flate2::read::DeflateDecoder::new(bytes))
        };
        Deflate { inner }
    }
}

impl Read for Deflate<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const BODY: &[u8] = br#"{"order": {"status": "shipped", "total": 89.5}}"#;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).expect("gzip");
        encoder.finish().expect("gzip")
    }

    #[test]
    fn every_supported_coding_decodes() {
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        zlib.write_all(BODY).expect("zlib");
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        raw.write_all(BODY).expect("deflate");
        let zstd =
            ruzstd::encoding::compress_to_vec(BODY, ruzstd::encoding::CompressionLevel::Fastest);
        let brotli = include_bytes!("../../tests/data/encoded/order.json.br");
        let brotli_plain = decode("br", brotli, 1 << 20).expect("br").expect("decoded");
        assert!(brotli_plain
            .bytes
            .starts_with(br#"{"order": {"status": "shipped", "total": 89.5}"#));
        let cases: [(&str, Vec<u8>); 6] = [
            ("gzip", gzip(BODY)),
            ("x-gzip", gzip(BODY)),
            ("deflate", zlib.finish().expect("zlib")),
            ("deflate", raw.finish().expect("deflate")),
            ("zstd", zstd.clone()),
            ("gzip, zstd", {
                ruzstd::encoding::compress_to_vec(
                    gzip(BODY).as_slice(),
                    ruzstd::encoding::CompressionLevel::Fastest,
                )
            }),
        ];
        for (coding, encoded) in cases {
            let decoded = decode(coding, &encoded, 1 << 20)
                .expect(coding)
                .expect(coding);
            assert_eq!(decoded.bytes, BODY, "{coding}");
            assert!(!decoded.truncated);
        }
        assert_eq!(decode("identity", BODY, 10), Ok(None));
        assert_eq!(decode("", BODY, 10), Ok(None));
        assert!(decode("compress", BODY, 10).is_err());
        assert!(decode("gzip", BODY, 10).is_err(), "not gzip at all");
    }

    #[test]
    fn decoding_stops_at_the_limit() {
        let bomb = gzip(&vec![b'x'; 10 << 20]);
        assert!(bomb.len() < 64 << 10, "10 MiB of x compresses well");
        let decoded = decode("gzip", &bomb, 1000)
            .expect("decodes")
            .expect("decoded");
        assert_eq!(decoded.bytes.len(), 1000);
        assert!(decoded.truncated);
    }
}
