package org.fenlei

import org.fenlei.core.ChainState
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import org.junit.jupiter.api.io.TempDir
import java.io.File

/** An encrypted store as an Android app opens it: a 32-byte key from the Keystore (README). */
class FenleiSecurityTest {
    @TempDir
    lateinit var dir: File

    private val key = ByteArray(32) { it.toByte() }
    private val other = ByteArray(32) { (31 - it).toByte() }

    @Test
    fun `open encrypted, refuse a wrong key, rekey`() {
        val path = File(dir, "fenlei.sqlite").absolutePath
        FenleiStore.openEncrypted(path, key).use { store ->
            assertTrue(store.isEncrypted())
            store.importCommunitiesCsv(sampleCityCsv())
            assertEquals(64, store.devicePublicKey().length)
            assertEquals(ChainState.NOT_CHECKED, store.chainCheck().state)
            assertTrue(store.receipts(null).isEmpty())
        }
        assertFalse(File(path).readBytes().copyOf(15).decodeToString() == "SQLite format 3")
        assertThrows<FenleiException.WrongKey> { FenleiStore.openEncrypted(path, other) }
        assertThrows<FenleiException.InvalidInput> { FenleiStore.openEncrypted(path, ByteArray(16)) }
        FenleiStore.openEncrypted(path, key).use { it.rekey(other) }
        assertThrows<FenleiException.WrongKey> { FenleiStore.openEncrypted(path, key) }
        FenleiStore.openEncrypted(path, other).use { assertEquals(200uL, it.communityCount()) }
    }

    @Test
    fun `encrypt a plain store in place`() {
        val path = File(dir, "fenlei.sqlite").absolutePath
        val device = FenleiStore.open(path).use { store ->
            store.importCommunitiesCsv(sampleCityCsv())
            store.deviceId()
        }
        FenleiStore.encryptPlainStore(path, key).use { store ->
            assertTrue(store.isEncrypted())
            assertEquals(device, store.deviceId())
            assertEquals(200uL, store.communityCount())
        }
        val left = dir.list()!!.toSet()
        assertTrue(setOf("fenlei.sqlite", "fenlei.sqlite-wal", "fenlei.sqlite-shm").containsAll(left), "$left")
        assertFalse(File(path).readBytes().copyOf(15).decodeToString() == "SQLite format 3")
        assertThrows<FenleiException.WrongKey> { FenleiStore.encryptPlainStore(path, other) }
        FenleiStore.encryptPlainStore(path, key).use { assertEquals(200uL, it.communityCount()) }
    }
}
