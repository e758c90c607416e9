# Named checks of ekyc-liveness (https://github.com/casey/just; `pip install rust-just`).
# `just test` is the project's test command (README "The two commands"); CI calls the same recipes.

# Everything: what .ci/run and a developer run before pushing.
test:
    tools/test.sh

# Formatting.
fmt:
    cargo fmt --all -- --check

# Lints, every crate and target.
clippy:
    cargo clippy --all-targets -- -D warnings

# Dependency licences (permissive only), bans and sources, offline; advisories need the RustSec
# database (GitHub) and run in .github/workflows/ci.yml.
deny:
    cargo deny check licenses bans sources

# The tests that need neither ../shared nor s3s-fs nor a browser (model suites skip without models).
test-fast:
    cargo test --all-targets

# The fuzz suites (decode, HTTP input) with more cases, as tools/test.sh runs them; CASES=n to change.
fuzz CASES="150000":
    EKYC_FUZZ_CASES={{CASES}} cargo test --test fuzz -- decode_survives --nocapture
    EKYC_FUZZ_CASES={{CASES}} cargo test --lib -- input::fuzz::extract --nocapture

# Provision the default models (mirror when EKYC_MODEL_MIRROR is set, else public URLs / recipes).
models:
    cargo run --release -- models fetch

# template.yaml and workflow linters.
lint-deploy:
    tools/lint-deploy.sh

# The two Lambda bootstraps (cargo-lambda + zig).
lambda-build:
    cargo lambda build --release --bin ekyc-api --bin ekyc-s3

# The declared minimum Rust version builds the workspace (needs that toolchain installed).
msrv:
    cargo +1.91 check --workspace --all-targets
