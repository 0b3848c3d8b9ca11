package org.fenlei.android

import android.content.Context
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.withContext
import org.fenlei.FenleiStore
import java.io.File

/**
 * The two conveniences an Android app wants on top of the generated API; everything else is the
 * generated `org.fenlei` / `org.fenlei.core` API itself.
 */
object Fenlei {
    /** Opens (or creates) the app's store in its private files directory, off the main thread. */
    suspend fun open(context: Context, name: String = "fenlei.sqlite"): FenleiStore =
        withContext(Dispatchers.IO) { FenleiStore.open(File(context.filesDir, name).absolutePath) }
}

/**
 * Runs blocking store calls on Dispatchers.IO, as the threading contract asks:
 * `val card = store.io { recordAnswer(id, answer, ctx); score(id) }`.
 */
suspend fun <T> FenleiStore.io(block: FenleiStore.() -> T): T =
    withContext(Dispatchers.IO) { block() }
