/work/main/card-applet-host/fuzz/target/x86_64-unknown-linux-gnu/release/deps/palmgate_matcher-55ebefe351a13fcd.d: /work/main/matcher/src/lib.rs /work/main/matcher/src/compare.rs /work/main/matcher/src/template.rs

/work/main/card-applet-host/fuzz/target/x86_64-unknown-linux-gnu/release/deps/libpalmgate_matcher-55ebefe351a13fcd.rlib: /work/main/matcher/src/lib.rs /work/main/matcher/src/compare.rs /work/main/matcher/src/template.rs

/work/main/card-applet-host/fuzz/target/x86_64-unknown-linux-gnu/release/deps/libpalmgate_matcher-55ebefe351a13fcd.rmeta: /work/main/matcher/src/lib.rs /work/main/matcher/src/compare.rs /work/main/matcher/src/template.rs

/work/main/matcher/src/lib.rs:
/work/main/matcher/src/compare.rs:
/work/main/matcher/src/template.rs:
