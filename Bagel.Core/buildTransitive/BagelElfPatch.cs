// Reads and edits the symbol-version requirements (.gnu.version_r) of an ELF64 little-endian shared library.
//
// Why this file exists: TorchSharp 0.107's libLibTorchSharp.so records a *strong* need for GLIBCXX_3.4.32
// (GCC 13's libstdc++), but Debian 12 and Ubuntu 22.04 ship libstdc++ up to GLIBCXX_3.4.30, so the dynamic
// loader refuses the library and every TorchSharp call fails. The only symbol behind that version is
// _ZSt21ios_base_library_initv, which TorchSharp never calls. Setting VER_FLG_WEAK on that one version
// requirement makes the loader accept the library when the version is absent.
//
// This one file is used twice, so there is one implementation:
//  * compiled into Bagel.Core (BAGEL_CORE is defined there), where TorchRuntime uses the reader to diagnose
//    a library that still fails to load;
//  * compiled at build time by MSBuild's RoslynCodeTaskFactory from Bagel.Core.targets (shipped next to this file
//    in the package's buildTransitive folder), where the task class at the bottom patches a *private copy* of the
//    library in obj/ that replaces the NuGet cache's file in the copy-to-output and publish item lists. The NuGet
//    cache is never written: the patched bytes always go to a new file that is renamed into place.
//
// The code stays within C# 7.3 and .NET Standard 2.0 because RoslynCodeTaskFactory compiles it with those.
namespace Bagel.Core.Native
{
    using System;
    using System.Collections.Generic;
    using System.IO;
    using System.Text;

    /// <summary>One version requirement (a Vernaux entry) of an ELF shared library.</summary>
    public sealed class ElfVersionNeed
    {
        /// <summary>Creates a version requirement record.</summary>
        /// <param name="library">The needed library's file name (for example <c>libstdc++.so.6</c>).</param>
        /// <param name="version">The version name (for example <c>GLIBCXX_3.4.32</c>).</param>
        /// <param name="flags">The raw <c>vna_flags</c> value.</param>
        /// <param name="flagsOffset">The file offset of the two-byte <c>vna_flags</c> field.</param>
        public ElfVersionNeed(string library, string version, int flags, long flagsOffset)
        {
            Library = library;
            Version = version;
            Flags = flags;
            FlagsOffset = flagsOffset;
        }

        /// <summary>The needed library's file name (for example <c>libstdc++.so.6</c>).</summary>
        public string Library { get; }

        /// <summary>The version name (for example <c>GLIBCXX_3.4.32</c>).</summary>
        public string Version { get; }

        /// <summary>The raw <c>vna_flags</c> value; bit 0x2 (<c>VER_FLG_WEAK</c>) marks a weak requirement.</summary>
        public int Flags { get; }

        /// <summary>The file offset of the two-byte <c>vna_flags</c> field.</summary>
        public long FlagsOffset { get; }

        /// <summary>Whether the loader tolerates the absence of this version (<c>VER_FLG_WEAK</c> is set).</summary>
        public bool IsWeak { get { return (Flags & ElfVersionInfo.VerFlagWeak) != 0; } }
    }

    /// <summary>The error thrown when a file is not an ELF64 little-endian shared object this reader understands.</summary>
    public sealed class ElfFormatException : Exception
    {
        /// <summary>Creates the exception.</summary>
        /// <param name="message">What is wrong, naming the file.</param>
        public ElfFormatException(string message) : base(message) { }
    }

    /// <summary>Reads version requirements and definitions of ELF64 little-endian files and weakens requirements.</summary>
    public static class ElfVersionInfo
    {
        /// <summary>The <c>VER_FLG_WEAK</c> bit of <c>vna_flags</c>.</summary>
        public const int VerFlagWeak = 0x2;

        private const uint ShtGnuVerdef = 0x6ffffffd;
        private const uint ShtGnuVerneed = 0x6ffffffe;

        /// <summary>Lists every version requirement (Vernaux entry) of the file.</summary>
        /// <param name="path">The shared library.</param>
        /// <returns>The requirements in file order; empty when the file has no <c>.gnu.version_r</c> section.</returns>
        public static List<ElfVersionNeed> ReadVersionNeeds(string path)
        {
            byte[] data = File.ReadAllBytes(path);
            return ReadVersionNeeds(data, path);
        }

        /// <summary>Lists every version the file defines (its <c>.gnu.version_d</c> names, e.g. <c>GLIBCXX_3.4.30</c>).</summary>
        /// <param name="path">A shared library such as <c>libstdc++.so.6</c>.</param>
        /// <returns>The defined version names; empty when the file has no version definitions.</returns>
        public static List<string> ReadVersionDefinitions(string path)
        {
            byte[] data = File.ReadAllBytes(path);
            var result = new List<string>();
            List<Section> sections = ReadSections(data, path);
            foreach (Section section in sections)
            {
                if (section.Type != ShtGnuVerdef) continue;
                if (section.Link >= sections.Count)
                    throw new ElfFormatException("ELF file '" + path + "': .gnu.version_d links to missing string table " + section.Link + ".");
                Section strtab = sections[(int)section.Link];
                long entry = section.Offset;
                for (uint i = 0; i < section.Info; i++)
                {
                    Check(data, entry, 20, path, "Verdef entry");
                    uint aux = U32(data, entry + 12);
                    uint next = U32(data, entry + 16);
                    long auxOffset = entry + aux;
                    Check(data, auxOffset, 8, path, "Verdaux entry");
                    result.Add(CString(data, strtab.Offset + U32(data, auxOffset), path));
                    if (next == 0) break;
                    entry += next;
                }
            }
            return result;
        }

        /// <summary>
        /// Writes a copy of <paramref name="sourcePath"/> to <paramref name="destinationPath"/> in which the named
        /// version requirements are weak. The destination is written to a temporary file and renamed into place, so a
        /// hard link to the source (as some build caches create) is never written through.
        /// </summary>
        /// <param name="sourcePath">The library to read; never modified.</param>
        /// <param name="destinationPath">Where the patched copy goes (its folder is created).</param>
        /// <param name="versions">Version names to weaken, e.g. <c>GLIBCXX_3.4.32</c>.</param>
        /// <returns>The requirements that were strong and are now weak (empty when nothing needed a change).</returns>
        public static List<string> WriteWeakenedCopy(string sourcePath, string destinationPath, ICollection<string> versions)
        {
            byte[] data = File.ReadAllBytes(sourcePath);
            var changed = new List<string>();
            foreach (ElfVersionNeed need in ReadVersionNeeds(data, sourcePath))
            {
                if (!versions.Contains(need.Version) || need.IsWeak) continue;
                int flags = need.Flags | VerFlagWeak;
                data[need.FlagsOffset] = (byte)(flags & 0xff);
                data[need.FlagsOffset + 1] = (byte)((flags >> 8) & 0xff);
                changed.Add(need.Library + ":" + need.Version);
            }

            string fullDestination = Path.GetFullPath(destinationPath);
            string directory = fullDestination.Substring(0, fullDestination.Length - Path.GetFileName(fullDestination).Length);
            Directory.CreateDirectory(directory);
            string temp = Path.Combine(directory, "." + Path.GetFileName(destinationPath) + "." + Guid.NewGuid().ToString("N") + ".tmp");
            try
            {
                using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
                {
                    stream.Write(data, 0, data.Length);
                    stream.Flush(true);
                }
                if (File.Exists(destinationPath)) File.Delete(destinationPath);
                File.Move(temp, destinationPath);
            }
            finally
            {
                if (File.Exists(temp)) File.Delete(temp);
            }
            return changed;
        }

        internal static List<ElfVersionNeed> ReadVersionNeeds(byte[] data, string path)
        {
            var result = new List<ElfVersionNeed>();
            List<Section> sections = ReadSections(data, path);
            foreach (Section section in sections)
            {
                if (section.Type != ShtGnuVerneed) continue;
                if (section.Link >= sections.Count)
                    throw new ElfFormatException("ELF file '" + path + "': .gnu.version_r links to missing string table " + section.Link + ".");
                Section strtab = sections[(int)section.Link];
                long entry = section.Offset;
                for (uint i = 0; i < section.Info; i++)
                {
                    Check(data, entry, 16, path, "Verneed entry");
                    ushort count = U16(data, entry + 2);
                    string library = CString(data, strtab.Offset + U32(data, entry + 4), path);
                    long aux = entry + U32(data, entry + 8);
                    for (int j = 0; j < count; j++)
                    {
                        Check(data, aux, 16, path, "Vernaux entry");
                        ushort flags = U16(data, aux + 4);
                        string name = CString(data, strtab.Offset + U32(data, aux + 8), path);
                        result.Add(new ElfVersionNeed(library, name, flags, aux + 4));
                        uint auxNext = U32(data, aux + 12);
                        if (auxNext == 0) break;
                        aux += auxNext;
                    }
                    uint next = U32(data, entry + 12);
                    if (next == 0) break;
                    entry += next;
                }
            }
            return result;
        }

        private struct Section
        {
            public uint Type;
            public long Offset;
            public long Size;
            public uint Link;
            public uint Info;
        }

        private static List<Section> ReadSections(byte[] data, string path)
        {
            if (data.Length < 64 || data[0] != 0x7f || data[1] != (byte)'E' || data[2] != (byte)'L' || data[3] != (byte)'F')
                throw new ElfFormatException("'" + path + "' is not an ELF file (bad magic).");
            if (data[4] != 2 || data[5] != 1)
                throw new ElfFormatException("'" + path + "' is not a 64-bit little-endian ELF file (class " + data[4] + ", data " + data[5] + ").");
            long shoff = (long)U64(data, 0x28);
            ushort shentsize = U16(data, 0x3A);
            ushort shnum = U16(data, 0x3C);
            if (shoff == 0 || shnum == 0)
                throw new ElfFormatException("'" + path + "' has no section header table; cannot read its version information.");
            if (shentsize < 64)
                throw new ElfFormatException("'" + path + "': section header entry size " + shentsize + " is smaller than 64.");
            var sections = new List<Section>(shnum);
            for (int i = 0; i < shnum; i++)
            {
                long at = shoff + (long)i * shentsize;
                Check(data, at, 64, path, "section header " + i);
                var s = new Section
                {
                    Type = U32(data, at + 4),
                    Offset = (long)U64(data, at + 24),
                    Size = (long)U64(data, at + 32),
                    Link = U32(data, at + 40),
                    Info = U32(data, at + 44),
                };
                sections.Add(s);
            }
            return sections;
        }

        private static void Check(byte[] data, long offset, int length, string path, string what)
        {
            if (offset < 0 || offset + length > data.Length)
                throw new ElfFormatException("'" + path + "': " + what + " at offset " + offset + " lies outside the file (" + data.Length + " bytes).");
        }

        private static ushort U16(byte[] data, long offset)
        {
            return (ushort)(data[offset] | (data[offset + 1] << 8));
        }

        private static uint U32(byte[] data, long offset)
        {
            return (uint)(data[offset] | (data[offset + 1] << 8) | (data[offset + 2] << 16) | (data[offset + 3] << 24));
        }

        private static ulong U64(byte[] data, long offset)
        {
            return U32(data, offset) | ((ulong)U32(data, offset + 4) << 32);
        }

        private static string CString(byte[] data, long offset, string path)
        {
            long end = offset;
            while (end < data.Length && data[end] != 0) end++;
            if (offset < 0 || end >= data.Length)
                throw new ElfFormatException("'" + path + "': string at offset " + offset + " is not terminated inside the file.");
            return Encoding.ASCII.GetString(data, (int)offset, (int)(end - offset));
        }
    }

#if !BAGEL_CORE
    /// <summary>
    /// MSBuild task: writes a copy of a native library whose listed version requirements are weak.
    /// Used by Bagel.Core.targets on TorchSharp's libLibTorchSharp.so; the NuGet cache's file is only read.
    /// </summary>
    public sealed class BagelWeakenElfVersionNeeds : Microsoft.Build.Utilities.Task
    {
        /// <summary>The library to read.</summary>
        [Microsoft.Build.Framework.Required]
        public string Source { get; set; }

        /// <summary>Where the patched copy goes.</summary>
        [Microsoft.Build.Framework.Required]
        public string Destination { get; set; }

        /// <summary>Semicolon-separated version names to weaken.</summary>
        [Microsoft.Build.Framework.Required]
        public string Versions { get; set; }

        /// <inheritdoc />
        public override bool Execute()
        {
            try
            {
                if (File.Exists(Destination)
                    && File.GetLastWriteTimeUtc(Destination) >= File.GetLastWriteTimeUtc(Source)
                    && new FileInfo(Destination).Length == new FileInfo(Source).Length)
                {
                    Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Low, "Bagel: patched copy is up to date: " + Destination);
                    return true;
                }
                var wanted = new HashSet<string>(Versions.Split(new[] { ';' }, StringSplitOptions.RemoveEmptyEntries));
                List<string> changed = ElfVersionInfo.WriteWeakenedCopy(Source, Destination, wanted);
                Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Normal,
                    "Bagel: wrote " + Destination + " from " + Source + (changed.Count == 0 ? " (no strong requirement to weaken)" : " (weakened " + string.Join(", ", changed) + ")"));
                return true;
            }
            catch (Exception ex)
            {
                Log.LogError("Bagel: could not prepare the patched copy of '" + Source + "' at '" + Destination + "': " + ex.Message);
                return false;
            }
        }
    }
#endif
}
