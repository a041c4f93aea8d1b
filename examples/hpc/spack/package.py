# Spack package recipe for impact, for HPC sites, in the import style of Spack 1.x package repositories
# (spack_repo.builtin). Copy it into a Spack repository as packages/impact/package.py, then:
# spack install impact
#
# Not run here: this repository's tests cannot run Spack (no Spack installation, no network). It follows
# the real build in CMakeLists.txt (find_package names and minimum versions, the IMPACT_* options, what
# `cmake --install` puts where) and is kept in step with it by hand; check it after changing the build.

import os

from spack_repo.builtin.build_systems.cmake import CMakePackage

from spack.package import *


class Impact(CMakePackage):
    """Command-line client for GA4GH federated biomedical clouds: OIDC device-flow login with a
    verified GA4GH Passport, Beacon v2 search, DRS downloads, WES runs and S3 results."""

    homepage = "https://github.com/impact-cli/impact"
    git = "https://github.com/impact-cli/impact.git"

    maintainers("impact-cli")

    license("Apache-2.0")

    version("main", branch="main")
    version("0.1.0", tag="v0.1.0")

    variant("qrcode", default=True, description="Show the login URL as a QR code on a terminal (libqrencode)")

    # cmake_minimum_required(VERSION 3.25); C++20 (g++ 12 or clang 14 and newer).
    depends_on("cmake@3.25:", type="build")
    depends_on("pkgconfig", type="build", when="+qrcode")
    depends_on("cxx", type="build")
    conflicts("%gcc@:11", msg="impact needs C++20 as g++ 12 implements it")
    conflicts("%clang@:13", msg="impact needs C++20 as clang 14 implements it")

    depends_on("curl@7.85:")          # CURLOPT_PROTOCOLS_STR
    depends_on("openssl@3:")
    depends_on("fmt@9:")
    depends_on("pugixml@1.11:")
    depends_on("tomlplusplus@3:")     # linked as a shared library (libtomlplusplus.so.3), as on Debian
    depends_on("libqrencode", when="+qrcode")
    # header-only
    depends_on("nlohmann-json@3.10:", type="build")
    depends_on("cli11@2.1:", type="build")

    def cmake_args(self):
        args = [
            self.define("IMPACT_BUILD_TESTS", False),   # the tests need a local federation (node, Ceph RGW, cwltool)
            self.define("IMPACT_WERROR", False),
            self.define("IMPACT_SANITIZE", False),
            self.define("IMPACT_FUZZ", False),
        ]
        if self.spec.satisfies("~qrcode"):
            args.append(self.define("CMAKE_DISABLE_FIND_PACKAGE_PkgConfig", True))
        return args

    @run_after("install")
    def check_layout(self):
        for path in ["bin/impact", "share/man/man1/impact.1.gz", "share/man/man5/impact-config.5.gz",
                     "share/bash-completion/completions/impact", "share/zsh/site-functions/_impact",
                     "share/fish/vendor_completions.d/impact.fish"]:
            if not os.path.exists(join_path(self.prefix, path)):
                raise InstallError(f"impact: {path} was not installed")

    @run_after("install")
    @on_package_attributes(run_tests=True)
    def check_version(self):
        impact = Executable(self.prefix.bin.impact)
        out = impact("--version", output=str)
        assert str(self.spec.version) in out or self.spec.satisfies("@main")
