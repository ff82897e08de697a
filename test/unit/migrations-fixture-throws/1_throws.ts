// A module that fails while it is imported, with a value in its message that no error may repeat.
throw new Error("could not connect with password hunter2")
