//! Tar streams built byte by byte, so that tests can write any name, type or size (hostile
//! layers included), and gzip.

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;

/// A tar stream under construction.
#[derive(Default)]
pub struct Tar(pub Vec<u8>);

impl Tar {
    /// Appends a raw GNU header.
    pub fn header(&mut self, name: &[u8], kind: u8, size: u64, link: &[u8]) {
        let mut h = tar::Header::new_gnu();
        {
            let raw = h.as_old_mut();
            raw.name = [0; 100];
            raw.name[..name.len()].copy_from_slice(name);
            raw.linkname[..link.len()].copy_from_slice(link);
        }
        h.set_entry_type(tar::EntryType::new(kind));
        h.set_size(size);
        h.set_mode(0o644);
        h.set_cksum();
        self.0.extend_from_slice(h.as_bytes());
    }

    /// Appends entry data padded to a block.
    pub fn data(&mut self, data: &[u8]) {
        self.0.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.0.extend(std::iter::repeat_n(0u8, pad));
    }

    /// A regular file.
    pub fn file(mut self, name: &str, data: &[u8]) -> Self {
        self.header(name.as_bytes(), b'0', data.len() as u64, b"");
        self.data(data);
        self
    }

    /// A directory.
    pub fn dir(mut self, name: &str) -> Self {
        self.header(name.as_bytes(), b'5', 0, b"");
        self
    }

    /// A hard (`b'1'`) or symbolic (`b'2'`) link.
    pub fn link(mut self, kind: u8, name: &str, target: &str) -> Self {
        self.header(name.as_bytes(), kind, 0, target.as_bytes());
        self
    }

    /// A device or fifo entry.
    pub fn special(mut self, kind: u8, name: &str) -> Self {
        self.header(name.as_bytes(), kind, 0, b"");
        self
    }

    /// A GNU long-name or PAX record of type `kind`.
    pub fn meta(mut self, kind: u8, data: &[u8]) -> Self {
        self.header(b"././@LongLink", kind, data.len() as u64, b"");
        self.data(data);
        self
    }

    /// The stream with its end-of-archive blocks.
    pub fn tar(mut self) -> Vec<u8> {
        self.0.extend(std::iter::repeat_n(0u8, 1024));
        self.0
    }

    /// The finished stream, gzipped.
    pub fn gz(self) -> Vec<u8> {
        gzip(&self.tar())
    }
}

/// Gzips `data` at the default level.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// `len` incompressible bytes (xorshift from a fixed seed), for layers whose size must survive
/// gzip.
pub fn noise(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
