/**
 * The native uWebSockets.js builds Vigil depends on (package.json, pinned by package-lock.json),
 * in order of preference. Each is an npm alias; docs/security.md records where each comes from and
 * the checksums of its binaries, and README.md's supported-platforms table is checked against this
 * list (tests/unit/uws-choice.test.ts).
 */
export interface UwsBuild {
  /** The dependency's name in package.json. */
  readonly dependency: string;
  /** The upstream uWebSockets.js release the binaries were built from. */
  readonly upstream: string;
  /** Folder of the `uws_<platform>_<arch>_<abi>.node` files, relative to the package's root. */
  readonly binaryDir: string;
  /** `platform_arch` pairs with a binary. */
  readonly targets: readonly string[];
  /** Node ABIs (`process.versions.modules`) with a binary on every target. */
  readonly abis: readonly number[];
  /**
   * Oldest glibc the Linux binaries load on: the newest `GLIBC_` symbol version they link against
   * (`objdump -T`). No build has binaries for musl (Alpine).
   */
  readonly glibcMin: string;
}

export const UWS_BUILDS: readonly UwsBuild[] = [
  {
    dependency: 'uWebSockets.js',
    upstream: 'v20.57.0',
    binaryDir: '.',
    targets: ['linux_x64', 'linux_arm64', 'darwin_x64', 'darwin_arm64', 'win32_x64'],
    abis: [115, 127, 137, 141],
    glibcMin: '2.38',
  },
  {
    dependency: 'uws-v20.30',
    upstream: 'v20.30.0',
    binaryDir: 'binaries',
    targets: ['linux_x64', 'linux_arm64', 'linux_arm', 'darwin_x64', 'darwin_arm64', 'win32_x64'],
    abis: [93, 108, 115],
    glibcMin: '2.27',
  },
];

/** Node major versions by ABI, for messages (https://nodejs.org/en/about/previous-releases). */
export const NODE_MAJOR_BY_ABI: Readonly<Record<number, number>> = {
  93: 16,
  108: 18,
  115: 20,
  120: 21,
  127: 22,
  131: 23,
  137: 24,
  141: 25,
  147: 26,
};

/** Node majors the hub itself supports (its other dependencies need 20 or newer). */
export const HUB_MIN_NODE_MAJOR = 20;
