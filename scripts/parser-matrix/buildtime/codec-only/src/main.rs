fn main(){ let _ = std::hint::black_box(imap_codec::ResponseCodec::default()); }
