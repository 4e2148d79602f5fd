// Named, typed members of a struct, for code that writes and reads a struct by name (the
// run state in a checkpoint, the summary line of metrics.jsonl): one table of fields
// serves both directions, so a member is written and read under the same name.
// FIELD_OF(Struct, member, "name") takes the member's type from the struct: a misspelt
// member, or one of a type not listed here, does not compile.
#ifndef MP_CORE_FIELD_H
#define MP_CORE_FIELD_H

#include <stdbool.h>
#include <stddef.h>

typedef enum FieldType { FIELD_DOUBLE, FIELD_LONG, FIELD_INT, FIELD_BOOL } FieldType;

typedef struct Field {
    const char *name;
    FieldType type;
    size_t offset;            // of the member in its struct
} Field;

#define FIELD_OF(Struct, member, field_name)                                                                 \
    {field_name,                                                                                          \
     _Generic(((Struct *)0)->member, double: FIELD_DOUBLE, long: FIELD_LONG, int: FIELD_INT, bool: FIELD_BOOL), \
     offsetof(Struct, member)}

// The member of object as a double (exact for the counts and sizes stored this way).
static inline double field_get(const Field *f, const void *object) {
    const char *at = (const char *)object + f->offset;
    switch (f->type) {
    case FIELD_DOUBLE: return *(const double *)at;
    case FIELD_LONG: return (double)*(const long *)at;
    case FIELD_INT: return *(const int *)at;
    case FIELD_BOOL: return *(const bool *)at;
    }
    return 0.0;
}

// Sets the member of object from a double (integers truncated as a C cast does, bool: != 0).
static inline void field_set(const Field *f, void *object, double value) {
    char *at = (char *)object + f->offset;
    switch (f->type) {
    case FIELD_DOUBLE: *(double *)at = value; break;
    case FIELD_LONG: *(long *)at = (long)value; break;
    case FIELD_INT: *(int *)at = (int)value; break;
    case FIELD_BOOL: *(bool *)at = value != 0; break;
    }
}

#endif
