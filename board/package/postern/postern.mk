################################################################################
#
# postern
#
################################################################################

# The Postern repository this tree is part of (board/..), copied into the build directory with
# rsync: a local package, built from the working tree as it is.
POSTERN_VERSION := $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' \
	$(BR2_EXTERNAL_POSTERN_PATH)/../Cargo.toml | head -n 1)
POSTERN_SITE = $(BR2_EXTERNAL_POSTERN_PATH)/..
POSTERN_SITE_METHOD = local
POSTERN_LICENSE = Apache-2.0
# target/ holds cargo's own builds of the host, gigabytes that the build does not read (and,
# with `cargo xtask image --buildroot`, Buildroot's output directory itself).
POSTERN_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = --exclude /target

# A local package has no download step, so the cargo infrastructure's vendoring (done while
# downloading) does not happen, and its `cargo build --offline --locked` would find no crates.
# `cargo xtask image --buildroot` runs `cargo vendor --locked` into the output directory first
# and writes this file, which replaces crates.io with the vendored copy.
POSTERN_VENDOR_CONFIG = $(BASE_DIR)/postern-cargo/config.toml

define POSTERN_CHECK_VENDORED_CRATES
	@test -f $(POSTERN_VENDOR_CONFIG) || { \
		echo "postern: $(POSTERN_VENDOR_CONFIG) is missing: the crates are not vendored." \
			"Build with 'cargo xtask image --buildroot $(TOPDIR)' in the Postern repository" \
			"(board/README.md)." >&2; \
		exit 1; \
	}
endef
POSTERN_PRE_BUILD_HOOKS += POSTERN_CHECK_VENDORED_CRATES

# AWS-LC's libssl (the openssl crate's AWS-LC backend, Postern's legacy TLS engine) has no
# pregenerated Rust bindings: aws-lc-sys builds it with CMake and runs bindgen, which loads
# libclang and reads the target's C headers from the staging directory.
POSTERN_DEPENDENCIES = host-clang $(BR2_CMAKE_HOST_DEPENDENCY)

# The build directory's own target/: a CARGO_TARGET_DIR from the caller's environment would
# mix Buildroot's cross build with the host's builds.
POSTERN_CARGO_ENV = \
	CARGO_TARGET_DIR=$(@D)/target \
	LIBCLANG_PATH=$(HOST_DIR)/lib \
	BINDGEN_EXTRA_CLANG_ARGS="--sysroot=$(STAGING_DIR)"
# The cargo infrastructure sets every package's release profile from Buildroot's options (no
# LTO, 16 codegen units, -O2 unless configured otherwise); these put back the workspace's own
# [profile.release] (Cargo.toml) and cargo's opt-level, so that the binary is the one the
# offline assembly ships. `cargo test -p xtask` checks they match Cargo.toml.
POSTERN_CARGO_ENV += \
	CARGO_PROFILE_RELEASE_LTO="thin" \
	CARGO_PROFILE_RELEASE_CODEGEN_UNITS="4" \
	CARGO_PROFILE_RELEASE_OPT_LEVEL="3"
# Only the executable: the workspace's other members are its libraries and xtask.
POSTERN_CARGO_BUILD_OPTS = --config $(POSTERN_VENDOR_CONFIG) --package postern --bin postern

# Installed from cargo's output: `cargo install`, the infrastructure's default, would leave its
# bookkeeping files (.crates.toml, .crates2.json) in the root filesystem.
define POSTERN_INSTALL_TARGET_CMDS
	$(INSTALL) -D -m 0755 \
		$(@D)/target/$(RUSTC_TARGET_NAME)/$(if $(BR2_ENABLE_DEBUG),debug,release)/postern \
		$(TARGET_DIR)/usr/bin/postern
endef

$(eval $(cargo-package))
