package org.fenlei

import org.fenlei.core.EvidenceFlag
import org.fenlei.core.InspectionKind
import org.fenlei.core.MediaKind
import org.fenlei.core.NewInspection
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import org.junit.jupiter.api.io.TempDir
import java.io.File
import java.nio.ByteBuffer
import java.nio.ByteOrder

/** FenleiMedia as an Android app sees it: paths in, records and flag classes out, typed errors. */
class FenleiMediaTest {
    @TempDir
    lateinit var dir: File

    /** A mono 16-bit 16 kHz WAV of silence, as a phone recorder would hand over. */
    private fun wav(frames: Int): File {
        val data = frames * 2
        val b = ByteBuffer.allocate(44 + data).order(ByteOrder.LITTLE_ENDIAN)
        b.put("RIFF".toByteArray()).putInt(36 + data).put("WAVE".toByteArray())
        b.put("fmt ".toByteArray()).putInt(16).putShort(1).putShort(1).putInt(16_000).putInt(32_000)
            .putShort(2).putShort(16)
        b.put("data".toByteArray()).putInt(data)
        return File(dir, "note.wav").also { it.writeBytes(b.array()) }
    }

    @Test
    fun `attach a voice note and read it back with its flags`() {
        FenleiStore.open(File(dir, "fenlei.sqlite").absolutePath).use { store ->
            store.importStandard(sampleStandardToml())
            store.importCommunitiesCsv(sampleCityCsv())
            val id = store.createInspection(
                NewInspection("150102-0001", "hohhot-residential", "2026.1", InspectionKind.DAILY_PATROL),
                "inspector-7",
            )
            FenleiMedia.open(store, File(dir, "media").absolutePath).use { media ->
                val attached = media.attachVoiceNote(id, "A01", wav(8_000).absolutePath, "inspector-7", "桶满溢")
                assertEquals(MediaKind.VOICE_NOTE, attached.record.kind)
                assertEquals(500uL, attached.record.durationMs)
                assertEquals(listOf<EvidenceFlag>(EvidenceFlag.NoDeviceFix), attached.flags)
                assertTrue(File(media.filePath(attached.record.originalPath)).isFile)
                assertEquals("桶满溢", media.media(attached.record.sha256)?.transcript)
                assertNull(media.media("0".repeat(64)))
                assertEquals(listOf(attached.record.sha256), media.evidenceFlags(id).map { it.sha256 })
                assertEquals(listOf(attached.record.sha256), store.inspection(id).evidence.map { it.sha256 })

                val junk = File(dir, "junk.jpg").also { it.writeText("not a photo") }
                assertThrows<FenleiException.InvalidInput> {
                    media.attachPhoto(id, "A01", junk.absolutePath, "inspector-7")
                }
                assertThrows<FenleiException.NotFound> {
                    media.attachVoiceNote("no-such-inspection", "A01", wav(10).absolutePath, "inspector-7")
                }
                assertEquals(1, media.inspectionMedia(id).size)
            }
        }
    }
}
