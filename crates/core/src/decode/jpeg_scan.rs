//! A walk over a JPEG's markers and entropy-coded data that counts the blocks each scan codes,
//! without reconstructing a pixel.
//!
//! Why: both JPEG decoders fill whatever a scan lacks with zero bits once they meet a marker (an
//! appended end-of-image marker, say), and zune-jpeg's strict mode only notices a scan that runs
//! into the end of the buffer, not one that runs into a marker. A JPEG cut at 60 % with `FF D9`
//! appended therefore decodes to an image whose lower part is a flat grey band. This walk decodes
//! the Huffman symbols of every scan (baseline, extended sequential and progressive, including
//! successive-approximation refinement and restart intervals) and reports a scan whose data ends
//! before its last block, a frame whose scans stop before every component and every coefficient
//! is coded to full precision, and a file without an end-of-image marker.
//!
//! Coding processes it does not model (arithmetic coding, lossless, hierarchical, a height given
//! by DNL, scans that use tables never defined) are [`Scan::NotChecked`]: the decoders decide.

/// What the walk found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scan {
    /// Every scan coded all its blocks, every component is complete and an end-of-image marker
    /// follows.
    Complete,
    /// The data ends (end of the buffer or an end-of-image marker) before the image does.
    Truncated(&'static str),
    /// The entropy-coded data is malformed in a way the decoders paper over.
    Corrupt(&'static str),
    /// A JPEG variant or structure this walk does not model; the decoders decide.
    NotChecked,
}

/// Lookahead bits of the fast Huffman table.
const LOOKAHEAD: u32 = 10;

const SCAN_ENDS_EARLY: &str = "a JPEG scan ends before its last block";
const SEGMENT_ENDS_EARLY: &str = "a JPEG header segment runs past the end of the data";
const NO_EOI: &str = "the JPEG has no end-of-image marker";
const SCANS_MISSING: &str = "the JPEG ends before its last scan";
const NO_FRAME: &str = "the JPEG ends before its image data";
const BAD_CODE: &str = "a JPEG scan holds an invalid Huffman code";
const MARKER_IN_SCAN: &str = "a marker interrupts a JPEG scan";

/// Walk `data` (a JPEG starting with SOI). Frames over `max_side` or `max_pixels`, or whose
/// progressive bookkeeping would need more than `max_bytes`, are not checked (the caller refuses
/// them from the header anyway).
pub(crate) fn walk(data: &[u8], max_side: u32, max_pixels: u64, max_bytes: u64) -> Scan {
    let mut w = Walker {
        data,
        max_side,
        max_pixels,
        max_bytes,
        frame: None,
        dc: Default::default(),
        ac: Default::default(),
        restart: 0,
        scans: 0,
    };
    match w.run() {
        Ok(()) => Scan::Complete,
        Err(s) => s,
    }
}

/// A canonical Huffman table: a lookup on the next [`LOOKAHEAD`] bits for short codes, and the
/// per-length bounds (T.81 F.2.2.3) for the rest.
struct Huffman {
    /// `(length << 8) | symbol`, 0 when the code is longer than the lookahead.
    fast: Vec<u16>,
    /// Largest code of each length (index 1..=16), -1 when there is none.
    max_code: [i32; 17],
    /// Smallest code of each length.
    min_code: [i32; 17],
    /// Index in `values` of the first symbol of each length.
    first: [i32; 17],
    values: Vec<u8>,
}

impl Huffman {
    /// From the 16 code counts and the symbols of a DHT table; `None` when the counts do not
    /// describe a prefix code.
    fn new(counts: &[u8], values: &[u8]) -> Option<Huffman> {
        let mut h = Huffman {
            fast: vec![0; 1 << LOOKAHEAD],
            max_code: [-1; 17],
            min_code: [0; 17],
            first: [0; 17],
            values: values.to_vec(),
        };
        let mut code: i32 = 0;
        let mut k: i32 = 0;
        for len in 1..=16usize {
            let n = i32::from(counts[len - 1]);
            if n > 0 {
                h.first[len] = k;
                h.min_code[len] = code;
                code += n;
                k += n;
                h.max_code[len] = code - 1;
            }
            if code > (1 << len) {
                return None;
            }
            code <<= 1;
        }
        for len in 1..=LOOKAHEAD as usize {
            let n = i32::from(counts[len - 1]);
            for j in 0..n {
                let c = (h.min_code[len] + j) as usize;
                let sym = *h.values.get((h.first[len] + j) as usize)?;
                let shift = LOOKAHEAD as usize - len;
                let entry = ((len as u16) << 8) | u16::from(sym);
                for slot in h.fast.get_mut(c << shift..(c + 1) << shift)? {
                    *slot = entry;
                }
            }
        }
        Some(h)
    }
}

struct Component {
    id: u8,
    h: usize,
    v: usize,
    /// Blocks of the component across and down (the non-interleaved grid).
    blocks_w: usize,
    blocks_h: usize,
    /// Coefficients (zig-zag index) coded to full precision (successive approximation bit 0).
    complete: [bool; 64],
    /// Per block, the coefficients that are non-zero so far (bit k = zig-zag index k): what an
    /// AC refinement scan reads correction bits for. Allocated at the component's first AC scan.
    nonzero: Vec<u64>,
}

struct Frame {
    progressive: bool,
    /// MCUs across and down in an interleaved scan.
    mcus_w: usize,
    mcus_h: usize,
    components: Vec<Component>,
}

/// What one scan codes for each of its blocks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Sequential: DC and the 63 AC coefficients.
    Sequential,
    /// Progressive DC, first pass.
    DcFirst,
    /// Progressive DC, one refinement bit per block.
    DcRefine,
    /// Progressive AC band `ss..=se`, first pass.
    AcFirst { ss: usize, se: usize },
    /// Progressive AC band `ss..=se`, refinement.
    AcRefine { ss: usize, se: usize },
}

struct ScanComponent {
    index: usize,
    dc: usize,
    ac: usize,
}

struct Walker<'a> {
    data: &'a [u8],
    max_side: u32,
    max_pixels: u64,
    max_bytes: u64,
    frame: Option<Frame>,
    dc: [Option<Huffman>; 4],
    ac: [Option<Huffman>; 4],
    restart: usize,
    scans: usize,
}

/// The position just after the next marker at or after `pos`, and the marker's code. Bytes that are
/// not a marker (garbage between segments, which the decoders skip) are skipped too.
fn next_marker(d: &[u8], mut pos: usize) -> Option<(u8, usize)> {
    loop {
        while *d.get(pos)? != 0xff {
            pos += 1;
        }
        while *d.get(pos + 1)? == 0xff {
            pos += 1;
        }
        let m = *d.get(pos + 1)?;
        if m != 0x00 {
            return Some((m, pos + 2));
        }
        pos += 2;
    }
}

impl Walker<'_> {
    fn run(&mut self) -> Result<(), Scan> {
        let d = self.data;
        let mut pos = 2;
        loop {
            let Some((m, after)) = next_marker(d, pos) else {
                return Err(Scan::Truncated(NO_EOI));
            };
            pos = after;
            match m {
                0xd9 => return self.finish(),
                // Markers without a length.
                0x01 | 0xd0..=0xd8 => continue,
                _ => {}
            }
            let len = match d.get(pos..pos + 2) {
                Some(b) => usize::from(u16::from_be_bytes([b[0], b[1]])),
                None => return Err(Scan::Truncated(SEGMENT_ENDS_EARLY)),
            };
            if len < 2 {
                return Err(Scan::NotChecked);
            }
            let end = pos + len;
            let Some(seg) = d.get(pos + 2..end) else {
                return Err(Scan::Truncated(SEGMENT_ENDS_EARLY));
            };
            match m {
                0xc4 => self.huffman_tables(seg)?,
                0xdd => {
                    let b = seg.get(..2).ok_or(Scan::NotChecked)?;
                    self.restart = usize::from(u16::from_be_bytes([b[0], b[1]]));
                }
                0xc0 | 0xc1 => self.frame_header(seg, false)?,
                0xc2 => self.frame_header(seg, true)?,
                // Lossless, hierarchical, arithmetic coding, DNL: not modelled.
                0xc3 | 0xc5..=0xc7 | 0xc9..=0xcb | 0xcd..=0xcf | 0xdc => {
                    return Err(Scan::NotChecked)
                }
                0xda => {
                    pos = self.scan(seg, end)?;
                    continue;
                }
                _ => {}
            }
            pos = end;
        }
    }

    /// At the end-of-image marker: every component coded, every coefficient to full precision.
    fn finish(&self) -> Result<(), Scan> {
        let Some(frame) = &self.frame else {
            return Err(Scan::Truncated(NO_FRAME));
        };
        if self.scans == 0 {
            return Err(Scan::Truncated(NO_FRAME));
        }
        if frame
            .components
            .iter()
            .any(|c| c.complete.iter().any(|&done| !done))
        {
            return Err(Scan::Truncated(SCANS_MISSING));
        }
        Ok(())
    }

    fn huffman_tables(&mut self, mut seg: &[u8]) -> Result<(), Scan> {
        while !seg.is_empty() {
            let class_id = seg[0];
            let counts = seg.get(1..17).ok_or(Scan::NotChecked)?;
            let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
            let values = seg.get(17..17 + total).ok_or(Scan::NotChecked)?;
            let table = Huffman::new(counts, values).ok_or(Scan::NotChecked)?;
            let id = usize::from(class_id & 0x0f);
            let slot = match class_id >> 4 {
                0 => self.dc.get_mut(id),
                1 => self.ac.get_mut(id),
                _ => None,
            }
            .ok_or(Scan::NotChecked)?;
            *slot = Some(table);
            seg = &seg[17 + total..];
        }
        Ok(())
    }

    fn frame_header(&mut self, seg: &[u8], progressive: bool) -> Result<(), Scan> {
        if self.frame.is_some() || seg.len() < 6 {
            return Err(Scan::NotChecked);
        }
        let height = u32::from(u16::from_be_bytes([seg[1], seg[2]]));
        let width = u32::from(u16::from_be_bytes([seg[3], seg[4]]));
        let n = usize::from(seg[5]);
        if width == 0
            || height == 0
            || width > self.max_side
            || height > self.max_side
            || u64::from(width) * u64::from(height) > self.max_pixels
            || !(1..=4).contains(&n)
        {
            return Err(Scan::NotChecked);
        }
        let specs = seg.get(6..6 + 3 * n).ok_or(Scan::NotChecked)?;
        let mut components = Vec::with_capacity(n);
        for s in specs.chunks_exact(3) {
            let (h, v) = (usize::from(s[1] >> 4), usize::from(s[1] & 0x0f));
            if !(1..=4).contains(&h) || !(1..=4).contains(&v) {
                return Err(Scan::NotChecked);
            }
            components.push(Component {
                id: s[0],
                h,
                v,
                blocks_w: 0,
                blocks_h: 0,
                complete: [false; 64],
                nonzero: Vec::new(),
            });
        }
        let h_max = components.iter().map(|c| c.h).max().unwrap_or(1);
        let v_max = components.iter().map(|c| c.v).max().unwrap_or(1);
        let (w, h) = (width as usize, height as usize);
        for c in &mut components {
            c.blocks_w = (w * c.h).div_ceil(h_max).div_ceil(8);
            c.blocks_h = (h * c.v).div_ceil(v_max).div_ceil(8);
        }
        let bookkeeping: u64 = components
            .iter()
            .map(|c| (c.blocks_w * c.blocks_h) as u64 * 8)
            .sum();
        if progressive && bookkeeping > self.max_bytes {
            return Err(Scan::NotChecked);
        }
        self.frame = Some(Frame {
            progressive,
            mcus_w: w.div_ceil(8 * h_max),
            mcus_h: h.div_ceil(8 * v_max),
            components,
        });
        Ok(())
    }

    /// Parse a scan header and walk its entropy-coded data, which starts at `start`; returns where
    /// the data ends (the position of the next marker, or the end of the buffer).
    fn scan(&mut self, seg: &[u8], start: usize) -> Result<usize, Scan> {
        let frame = self.frame.as_mut().ok_or(Scan::NotChecked)?;
        let n = usize::from(*seg.first().ok_or(Scan::NotChecked)?);
        if !(1..=4).contains(&n) || seg.len() < 1 + 2 * n + 3 {
            return Err(Scan::NotChecked);
        }
        let mut comps: Vec<ScanComponent> = Vec::with_capacity(n);
        for s in seg[1..1 + 2 * n].chunks_exact(2) {
            let index = frame
                .components
                .iter()
                .position(|c| c.id == s[0])
                .ok_or(Scan::NotChecked)?;
            if comps.iter().any(|c| c.index == index) {
                return Err(Scan::NotChecked);
            }
            comps.push(ScanComponent {
                index,
                dc: usize::from(s[1] >> 4),
                ac: usize::from(s[1] & 0x0f),
            });
        }
        let p = &seg[1 + 2 * n..];
        let (ss, se, ah, al) = (
            usize::from(p[0]),
            usize::from(p[1]),
            p[2] >> 4,
            usize::from(p[2] & 0x0f),
        );
        let kind = if !frame.progressive {
            Kind::Sequential
        } else if ss == 0 {
            if se != 0 {
                return Err(Scan::NotChecked);
            }
            if ah == 0 {
                Kind::DcFirst
            } else {
                Kind::DcRefine
            }
        } else {
            if n != 1 || se < ss || se > 63 {
                return Err(Scan::NotChecked);
            }
            if ah == 0 {
                Kind::AcFirst { ss, se }
            } else {
                Kind::AcRefine { ss, se }
            }
        };
        let needs_dc = matches!(kind, Kind::Sequential | Kind::DcFirst);
        let needs_ac = matches!(
            kind,
            Kind::Sequential | Kind::AcFirst { .. } | Kind::AcRefine { .. }
        );
        for c in &comps {
            if needs_dc && self.dc.get(c.dc).and_then(Option::as_ref).is_none() {
                return Err(Scan::NotChecked);
            }
            if needs_ac && self.ac.get(c.ac).and_then(Option::as_ref).is_none() {
                return Err(Scan::NotChecked);
            }
        }
        if let Kind::AcFirst { .. } | Kind::AcRefine { .. } = kind {
            let c = &mut frame.components[comps[0].index];
            if c.nonzero.is_empty() {
                c.nonzero = vec![0; c.blocks_w * c.blocks_h];
            }
        }

        // A scan of one component codes that component's blocks one by one (non-interleaved);
        // a scan of several codes MCUs of h x v blocks of each.
        let units = if n == 1 {
            let c = &frame.components[comps[0].index];
            c.blocks_w * c.blocks_h
        } else {
            frame.mcus_w * frame.mcus_h
        };
        let mut bits = Bits {
            data: self.data,
            pos: start,
            acc: 0,
            n: 0,
            at_marker: false,
        };
        let mut eobrun: u32 = 0;
        for unit in 0..units {
            if self.restart > 0 && unit > 0 && unit % self.restart == 0 {
                bits.restart()?;
                eobrun = 0;
            }
            if n == 1 {
                let c = &comps[0];
                let blocks = &mut frame.components[c.index].nonzero;
                let nz = blocks.get_mut(unit);
                block(
                    kind,
                    &mut bits,
                    self.dc.get(c.dc).and_then(Option::as_ref),
                    self.ac.get(c.ac).and_then(Option::as_ref),
                    nz,
                    &mut eobrun,
                )?;
            } else {
                for c in &comps {
                    let fc = &frame.components[c.index];
                    for _ in 0..fc.h * fc.v {
                        block(
                            kind,
                            &mut bits,
                            self.dc.get(c.dc).and_then(Option::as_ref),
                            self.ac.get(c.ac).and_then(Option::as_ref),
                            None,
                            &mut eobrun,
                        )?;
                    }
                }
            }
        }
        for c in &comps {
            let comp = &mut frame.components[c.index];
            match kind {
                Kind::Sequential => comp.complete = [true; 64],
                _ if al != 0 => {}
                Kind::DcFirst | Kind::DcRefine => comp.complete[0] = true,
                Kind::AcFirst { ss, se } | Kind::AcRefine { ss, se } => {
                    comp.complete[ss..=se].iter_mut().for_each(|d| *d = true);
                }
            }
        }
        self.scans += 1;
        Ok(bits.end())
    }
}

/// A table the scan header checked is defined.
fn table(t: Option<&Huffman>) -> Result<&Huffman, Scan> {
    t.ok_or(Scan::NotChecked)
}

/// Walk the coded data of one block.
fn block(
    kind: Kind,
    bits: &mut Bits<'_>,
    dc: Option<&Huffman>,
    ac: Option<&Huffman>,
    nonzero: Option<&mut u64>,
    eobrun: &mut u32,
) -> Result<(), Scan> {
    match kind {
        Kind::Sequential => {
            bits.dc(table(dc)?)?;
            let ac = table(ac)?;
            let mut k = 1;
            while k < 64 {
                // The symbol and its `s` magnitude bits.
                let rs = bits.coded(ac)?;
                let (r, s) = (usize::from(rs >> 4), rs & 0x0f);
                if s == 0 {
                    if r != 15 {
                        break;
                    }
                    k += 16;
                } else {
                    k += r + 1;
                }
            }
        }
        Kind::DcFirst => bits.dc(table(dc)?)?,
        Kind::DcRefine => bits.skip(1)?,
        Kind::AcFirst { ss, se } => {
            if *eobrun > 0 {
                *eobrun -= 1;
                return Ok(());
            }
            let ac = table(ac)?;
            let mut mask = 0u64;
            let mut k = ss;
            while k <= se {
                let rs = bits.coded(ac)?;
                let (r, s) = (usize::from(rs >> 4), rs & 0x0f);
                if s == 0 {
                    if r != 15 {
                        *eobrun = (1u32 << r) - 1 + bits.get(r as u32)?;
                        break;
                    }
                    k += 16;
                } else {
                    k += r;
                    if k <= 63 {
                        mask |= 1 << k;
                    }
                    k += 1;
                }
            }
            if let Some(nz) = nonzero {
                *nz |= mask;
            }
        }
        Kind::AcRefine { ss, se } => {
            let mut scratch = 0u64;
            let nz = nonzero.unwrap_or(&mut scratch);
            let mut k = ss;
            if *eobrun == 0 {
                let ac = table(ac)?;
                while k <= se {
                    let rs = bits.decode(ac)?;
                    let (mut r, s) = (i32::from(rs >> 4), rs & 0x0f);
                    if s != 0 {
                        // A new coefficient of magnitude 1: its sign bit.
                        bits.skip(1)?;
                    } else if r != 15 {
                        *eobrun = (1u32 << r) + bits.get(r as u32)?;
                        break;
                    }
                    // Skip r zero-history coefficients, reading a correction bit for each
                    // non-zero one on the way; stop on the target.
                    while k <= se {
                        if *nz & (1 << k) != 0 {
                            bits.skip(1)?;
                        } else {
                            r -= 1;
                            if r < 0 {
                                break;
                            }
                        }
                        k += 1;
                    }
                    if s != 0 && k <= 63 {
                        *nz |= 1 << k;
                    }
                    k += 1;
                }
            }
            if *eobrun > 0 {
                while k <= se {
                    if *nz & (1 << k) != 0 {
                        bits.skip(1)?;
                    }
                    k += 1;
                }
                *eobrun -= 1;
            }
        }
    }
    Ok(())
}

/// The bits of entropy-coded data (byte stuffing removed), up to the next marker. Asking for a bit
/// past that marker is the scan ending early.
struct Bits<'a> {
    data: &'a [u8],
    /// Next byte to load.
    pos: usize,
    /// The next `n` bits, most significant first.
    acc: u64,
    n: u32,
    /// `pos` is at a marker (or the end of the data): nothing more to load.
    at_marker: bool,
}

impl Bits<'_> {
    fn fill(&mut self) {
        // Four bytes at once when none of them is 0xFF (no stuffing, no marker): the usual case.
        if self.n <= 32 && !self.at_marker {
            if let Some(b) = self.data.get(self.pos..self.pos + 4) {
                let word = [b[0], b[1], b[2], b[3]];
                if !word.contains(&0xff) {
                    self.acc |= u64::from(u32::from_be_bytes(word)) << (32 - self.n);
                    self.n += 32;
                    self.pos += 4;
                    return;
                }
            }
        }
        while self.n <= 56 && !self.at_marker {
            let Some(&b) = self.data.get(self.pos) else {
                self.at_marker = true;
                break;
            };
            if b == 0xff {
                if self.data.get(self.pos + 1) == Some(&0x00) {
                    self.pos += 2;
                } else {
                    self.at_marker = true;
                    break;
                }
            } else {
                self.pos += 1;
            }
            self.acc |= u64::from(b) << (56 - self.n);
            self.n += 8;
        }
    }

    /// Why the data ran out: the end of the buffer or an end-of-image marker is truncation, any
    /// other marker inside a scan is corruption.
    fn ran_out(&self) -> Scan {
        let mut p = self.pos;
        while self.data.get(p) == Some(&0xff) && self.data.get(p + 1) == Some(&0xff) {
            p += 1;
        }
        match self.data.get(p + 1) {
            None | Some(0xd9) => Scan::Truncated(SCAN_ENDS_EARLY),
            Some(_) => Scan::Corrupt(MARKER_IN_SCAN),
        }
    }

    /// The next `k` (≤ 16) bits as a number.
    #[inline]
    fn get(&mut self, k: u32) -> Result<u32, Scan> {
        if k == 0 {
            return Ok(0);
        }
        if self.n < k {
            self.fill();
            if self.n < k {
                return Err(self.ran_out());
            }
        }
        let v = (self.acc >> (64 - k)) as u32;
        self.acc <<= k;
        self.n -= k;
        Ok(v)
    }

    fn skip(&mut self, k: u32) -> Result<(), Scan> {
        self.get(k).map(|_| ())
    }

    /// A DC difference: its category symbol and that many bits.
    fn dc(&mut self, h: &Huffman) -> Result<(), Scan> {
        let s = self.decode(h)?;
        if s > 16 {
            return Err(Scan::Corrupt(BAD_CODE));
        }
        self.skip(u32::from(s))
    }

    /// An AC symbol (`RRRRSSSS`) and its `SSSS` magnitude bits, in one step when both are within
    /// the lookahead.
    #[inline]
    fn coded(&mut self, h: &Huffman) -> Result<u8, Scan> {
        if self.n < 32 {
            self.fill();
        }
        if self.n >= LOOKAHEAD + 15 {
            let e = h.fast[(self.acc >> (64 - LOOKAHEAD)) as usize];
            if e != 0 {
                let sym = e as u8;
                let len = u32::from(e >> 8) + u32::from(sym & 0x0f);
                self.acc <<= len;
                self.n -= len;
                return Ok(sym);
            }
        }
        let sym = self.decode(h)?;
        self.skip(u32::from(sym & 0x0f))?;
        Ok(sym)
    }

    #[inline]
    fn decode(&mut self, h: &Huffman) -> Result<u8, Scan> {
        if self.n < 16 {
            self.fill();
        }
        if self.n >= LOOKAHEAD {
            let e = h.fast[(self.acc >> (64 - LOOKAHEAD)) as usize];
            if e != 0 {
                let len = u32::from(e >> 8);
                self.acc <<= len;
                self.n -= len;
                return Ok(e as u8);
            }
        }
        let mut code: i32 = 0;
        for len in 1..=16 {
            code = (code << 1) | self.get(1)? as i32;
            if code <= h.max_code[len] {
                let i = h.first[len] + code - h.min_code[len];
                return h
                    .values
                    .get(i as usize)
                    .copied()
                    .ok_or(Scan::Corrupt(BAD_CODE));
            }
        }
        Err(Scan::Corrupt(BAD_CODE))
    }

    /// At a restart interval's end: drop the padding bits and expect an RSTn marker.
    fn restart(&mut self) -> Result<(), Scan> {
        let p = self.marker_position();
        let mut q = p;
        while self.data.get(q + 1) == Some(&0xff) {
            q += 1;
        }
        match self.data.get(q + 1) {
            Some(0xd0..=0xd7) => {
                self.pos = q + 2;
                self.acc = 0;
                self.n = 0;
                self.at_marker = false;
                Ok(())
            }
            _ => {
                self.pos = p;
                Err(self.ran_out())
            }
        }
    }

    /// Where the next marker starts (padding bits and any stray bytes before it skipped).
    fn marker_position(&self) -> usize {
        if self.at_marker {
            return self.pos;
        }
        let d = self.data;
        let mut p = self.pos;
        while p < d.len() {
            if d[p] == 0xff && d.get(p + 1) != Some(&0x00) {
                return p;
            }
            p += 1;
        }
        d.len()
    }

    /// Where the scan's data ends.
    fn end(&self) -> usize {
        self.marker_position()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huffman_tables_must_be_prefix_codes() {
        // Two codes of length 1 and one of length 2: over-full.
        let mut counts = [0u8; 16];
        counts[0] = 2;
        counts[1] = 1;
        assert!(Huffman::new(&counts, &[1, 2, 3]).is_none());
        counts[1] = 0;
        let h = Huffman::new(&counts, &[7, 9]).expect("valid");
        assert_eq!(h.fast[0], (1 << 8) | 7);
        assert_eq!(h.fast[(1 << LOOKAHEAD) - 1], (1 << 8) | 9);
    }

    #[test]
    fn the_bit_reader_stops_at_markers_and_unstuffs() {
        let d = [0xab, 0xff, 0x00, 0x12, 0xff, 0xd9];
        let mut b = Bits {
            data: &d,
            pos: 0,
            acc: 0,
            n: 0,
            at_marker: false,
        };
        assert_eq!(b.get(8), Ok(0xab));
        assert_eq!(b.get(8), Ok(0xff), "FF 00 is one FF byte");
        assert_eq!(b.get(8), Ok(0x12));
        assert_eq!(b.get(1), Err(Scan::Truncated(SCAN_ENDS_EARLY)));
        assert_eq!(b.end(), 4);
        let d = [0x12, 0xff, 0xc4];
        let mut b = Bits {
            data: &d,
            pos: 0,
            acc: 0,
            n: 0,
            at_marker: false,
        };
        assert_eq!(b.get(8), Ok(0x12));
        assert_eq!(b.get(1), Err(Scan::Corrupt(MARKER_IN_SCAN)));
    }

    #[test]
    fn no_end_marker_no_frame_and_missing_segments_are_truncation() {
        let limits = (10_000, 50_000_000, 1 << 20);
        let w = |d: &[u8]| walk(d, limits.0, limits.1, limits.2);
        assert_eq!(w(&[0xff, 0xd8]), Scan::Truncated(NO_EOI));
        assert_eq!(w(&[0xff, 0xd8, 0xff, 0xd9]), Scan::Truncated(NO_FRAME));
        assert_eq!(
            w(&[0xff, 0xd8, 0xff, 0xe1, 0x01, 0x00, 0, 0, 0xff, 0xd9]),
            Scan::Truncated(SEGMENT_ENDS_EARLY)
        );
        // Arithmetic coding (SOF9) is left to the decoders.
        assert_eq!(
            w(&[0xff, 0xd8, 0xff, 0xc9, 0x00, 0x02, 0xff, 0xd9]),
            Scan::NotChecked
        );
    }
}
